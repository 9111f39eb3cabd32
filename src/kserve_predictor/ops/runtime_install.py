"""Install the runtime in a cluster, and find it there before deploying with it.

KServe resolves ``predictor.model.runtime`` to a ServingRuntime in the InferenceService's
namespace first, then to a ClusterServingRuntime of that name; the checks here look in the
same order.
"""

from __future__ import annotations

import logging
from typing import Any

from kserve_predictor.engines.own_runtime import IMAGE, NAME
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.runtime_manifest import serving_runtime

log = logging.getLogger("kserve_predictor.runtime.install")  # stable log channel, not the path


def install_runtime(
    cluster: Cluster, namespace: str | None = None, image: str = IMAGE
) -> dict[str, Any]:
    """Server-side apply the ClusterServingRuntime (or, with ``namespace``, a namespaced
    ServingRuntime); returns the stored object."""
    manifest = serving_runtime(namespace, image)
    if namespace is None:
        # Cluster.apply fills the namespace into the path; the cluster-scoped path has none,
        # and an empty metadata.namespace is how the API stores a cluster-scoped object.
        manifest["metadata"]["namespace"] = ""
    stored = cluster.apply(manifest)
    log.info("applied %s %s with image %s", manifest["kind"], NAME, image)
    return stored


def runtime_installed(cluster: Cluster, namespace: str) -> bool | None:
    """Is the runtime there for InferenceServices in ``namespace``? None: not readable.

    Listed, not read by name: the compatibility check lists the runtimes anyway, so the step
    needs one permission (list) for both."""
    runtimes, unreadable = cluster.list_runtimes(namespace)
    if any(r.get("metadata", {}).get("name") == NAME for r in runtimes):
        return True
    return None if unreadable else False
