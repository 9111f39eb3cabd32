"""Whether this process runs in a Kubernetes pod, and the pod's namespace: read here only.

The kubelet sets ``KUBERNETES_SERVICE_HOST`` (and ``_PORT``) in every container, and the
Kubernetes client's in-cluster configuration needs it too; the service account's volume holds
the pod's namespace. Outside a pod the variable is unset and the file is absent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SERVICE_HOST = "KUBERNETES_SERVICE_HOST"
SERVICE_VARIABLES = "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT"
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def in_pod(env: Mapping[str, str] | None = None) -> bool:
    """Does this process run in a pod (so cluster-local addresses resolve)?"""
    return bool((os.environ if env is None else env).get(SERVICE_HOST))


def pod_namespace() -> str:
    """The pod's namespace from its service account volume; "" when it cannot be read (outside
    a pod, or a pod without a mounted token): each caller says what "" means for it."""
    try:
        with open(NAMESPACE_FILE, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""
