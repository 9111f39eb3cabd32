"""Where KServe releases read the same intent differently, the name this cluster reads.

The deployment mode annotation was renamed in KServe v0.16 (pkg/constants/constants.go, #4608):
v0.14 and v0.15 read only ``RawDeployment``/``Serverless``/``ModelMesh`` in ``GetDeploymentMode``
(pkg/controller/v1beta1/inferenceservice/utils/utils.go) and silently fall back to the
configmap's default mode (``Serverless``) for anything else, ``Standard`` included; v0.16 and
later read ``Standard``/``Knative`` and map the legacy names. v0.15.1 to v0.16 also reject an
update whose annotation differs from the recorded ``status.deploymentMode``
(inference_service_validation.go), so a service keeps the spelling its status records.

The release is read from what the deploy step lists anyway: the ClusterServingRuntimes' stock
images carry it as their tag (``kserve/sklearnserver:v0.15.2``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kserve_predictor.settings.serving import LEGACY_MODES

RENAMED_IN = (0, 16)
LEGACY_NAMES = {current: legacy for legacy, current in LEGACY_MODES.items()}
_STOCK_TAG = re.compile(r"(?:^|/)kserve/[a-z0-9-]+:v(\d+)\.(\d+)(?:\.\d+)?(?:$|[-+])")


def release_of(runtimes: Iterable[dict[str, Any]]) -> tuple[int, int] | None:
    """KServe's release (major, minor) from the stock runtimes' image tags; None when no
    runtime read from the cluster carries one."""
    found = []
    for runtime in runtimes:
        for container in (runtime.get("spec") or {}).get("containers") or []:
            match = _STOCK_TAG.search(str(container.get("image") or ""))
            if match:
                found.append((int(match.group(1)), int(match.group(2))))
    return max(found) if found else None


def mode_spelling(
    mode: str, release: tuple[int, int] | None, existing: dict[str, Any] | None
) -> str:
    """How to write deployment mode ``mode`` (Standard or Knative) for this cluster: the
    spelling the service's status records, else the one its release reads."""
    recorded = str(((existing or {}).get("status") or {}).get("deploymentMode") or "")
    if recorded in LEGACY_NAMES.values():
        return LEGACY_NAMES.get(mode, mode)
    if recorded in LEGACY_NAMES:
        return mode
    if release is not None and release < RENAMED_IN:
        return LEGACY_NAMES.get(mode, mode)
    return mode
