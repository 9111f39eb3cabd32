"""KServe's XGBoost server (kserve-xgbserver, v1): one *.bst, *.json or *.ubj Booster file."""

from __future__ import annotations

import posixpath

from kserve_predictor.engines.base import Engine, LayoutPlan
from kserve_predictor.model.mlmodel import XGBOOST, ModelInfo

# MLflow's XGBoost file extension → the one xgbserver recognizes (.xgb is the old binary format).
_EXTENSIONS = {
    ".ubj": ".ubj",
    ".json": ".json",
    ".bst": ".bst",
    ".xgb": ".bst",
    ".deprecated": ".bst",
}


class XGBoostEngine(Engine):
    name = "xgboost"
    model_format = "xgboost"
    legacy_field = "xgboost"
    protocol = "v1"
    runtime = "kserve-xgbserver"
    formats = (XGBOOST,)

    def unsupported_reason(self, info: ModelInfo) -> str | None:
        reason = super().unsupported_reason(info)
        if reason is None and posixpath.splitext(info.model_path)[1] not in _EXTENSIONS:
            return (
                f"{info.model_path} is not a native XGBoost file; log it with "
                "mlflow.xgboost.log_model(..., model_format='ubj')"
            )
        return reason

    def plan(self, info: ModelInfo, model_name: str) -> LayoutPlan:
        extension = _EXTENSIONS[posixpath.splitext(info.model_path)[1]]
        return LayoutPlan(copies={"model" + extension: info.model_path})
