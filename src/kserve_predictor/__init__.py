"""kserve-predictor: put an MLflow model behind a KServe prediction service.

The library's entry points are importable from here (docs/library.md); each is loaded on first
use, so ``import kserve_predictor`` stays light and the packages behind it are free to move.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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
    "LocalSettings": "kserve_predictor.local.target",
    "DeploySettings": "kserve_predictor.settings.groups",
    "S3Settings": "kserve_predictor.settings.groups",
    "ClusterSettings": "kserve_predictor.settings.groups",
    "FuseMLSettings": "kserve_predictor.settings.groups",
    "NetworkSettings": "kserve_predictor.settings.groups",
    "ServingOptions": "kserve_predictor.settings.serving",
}
__all__ = ["__version__", *_HOMES]

if TYPE_CHECKING:  # what type checkers and editors see; nothing is imported at run time
    from kserve_predictor.choice.detect import (
        detect as detect,
    )
    from kserve_predictor.layouts.convert import (
        convert as convert,
    )
    from kserve_predictor.local.target import (
        LocalSettings as LocalSettings,
    )
    from kserve_predictor.local.target import (
        deploy_local as deploy_local,
    )
    from kserve_predictor.local.target import (
        open_foreground as open_foreground,
    )
    from kserve_predictor.ops.deploy import (
        deploy as deploy,
    )
    from kserve_predictor.ops.deploy_plan import (
        DeployResult as DeployResult,
    )
    from kserve_predictor.ops.deploy_plan import (
        render as render,
    )
    from kserve_predictor.ops.lifecycle import (
        delete as delete,
    )
    from kserve_predictor.ops.lifecycle import (
        status as status,
    )
    from kserve_predictor.ops.rollout import (
        promote as promote,
    )
    from kserve_predictor.ops.rollout import (
        rollback as rollback,
    )
    from kserve_predictor.settings.groups import (
        ClusterSettings as ClusterSettings,
    )
    from kserve_predictor.settings.groups import (
        DeploySettings as DeploySettings,
    )
    from kserve_predictor.settings.groups import (
        FuseMLSettings as FuseMLSettings,
    )
    from kserve_predictor.settings.groups import (
        NetworkSettings as NetworkSettings,
    )
    from kserve_predictor.settings.groups import (
        S3Settings as S3Settings,
    )
    from kserve_predictor.settings.serving import (
        ServingOptions as ServingOptions,
    )


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kserve_predictor' has no attribute {name!r}")
    return getattr(import_module(home), name)
