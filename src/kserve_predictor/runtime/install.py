"""Install the runtime in a cluster, and find it there before deploying with it.

KServe resolves ``predictor.model.runtime`` to a ServingRuntime in the InferenceService's
namespace first, then to a ClusterServingRuntime of that name; the checks here look in the
same order.
"""

from __future__ import annotations

import logging
from typing import Any

from ..cluster import Cluster
from ..errors import UsageError
from .manifest import IMAGE, NAME, serving_runtime

log = logging.getLogger(__name__)

INSTALL_COMMAND = "kserve-predictor install-runtime"


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


def pyfunc_runtime_available(cluster: Cluster, namespace: str) -> bool:
    """For ``auto``: may the step pick the pyfunc engine? An unreadable cluster-scoped runtime
    (the step's Role cannot grant cluster reads) counts as available: KServe itself reports a
    missing one as NoSupportingRuntime, which the wait turns into an error."""
    return runtime_installed(cluster, namespace) is not False


def require_runtime(cluster: Cluster, namespace: str) -> None:
    """Refuse (exit 2, before any write) when the runtime is not in the cluster."""
    found = runtime_installed(cluster, namespace)
    if found is False:
        raise UsageError(
            f"the {NAME} runtime is not installed in this cluster (no ServingRuntime in "
            f"{namespace!r}, no ClusterServingRuntime); install it with `{INSTALL_COMMAND}` "
            f"(or `{INSTALL_COMMAND} --namespace {namespace}`), or choose another --predictor"
        )
    if found is None:
        log.warning(
            "cannot read ClusterServingRuntime %s (no permission): assuming it is installed", NAME
        )
