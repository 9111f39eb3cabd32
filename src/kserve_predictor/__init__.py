"""kserve-predictor: put an MLflow model behind a KServe prediction service.

The library's entry points are importable from here (docs/library.md); each is loaded on first
use, so ``import kserve_predictor`` stays light and the packages behind it are free to move.
Nothing is imported here statically: every module of the package may import ``__version__``
from the root without reaching a layer above its own.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_HOMES = {
    "deploy": "kserve_predictor.ops.deploy",
    "render": "kserve_predictor.ops.deploy_plan",
    "DeployResult": "kserve_predictor.ops.deploy_plan",
    "status": "kserve_predictor.ops.lifecycle",
    "delete": "kserve_predictor.ops.lifecycle",
    "promote": "kserve_predictor.ops.rollout",
    "rollback": "kserve_predictor.ops.rollout",
    "detect": "kserve_predictor.choice.detect",
    "convert": "kserve_predictor.layouts.convert",
    "deploy_local": "kserve_predictor.local.target",
    "open_foreground": "kserve_predictor.local.target",
    "LocalSettings": "kserve_predictor.settings.groups",
    "DeploySettings": "kserve_predictor.settings.groups",
    "S3Settings": "kserve_predictor.settings.groups",
    "ClusterSettings": "kserve_predictor.settings.groups",
    "FuseMLSettings": "kserve_predictor.settings.groups",
    "NetworkSettings": "kserve_predictor.settings.groups",
    "ServingOptions": "kserve_predictor.settings.serving",
}
__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kserve_predictor' has no attribute {name!r}")
    return getattr(import_module(home), name)
