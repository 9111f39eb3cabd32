"""KServe's LightGBM server (kserve-lgbserver, v1): a model.bst Booster in LightGBM's format."""

from __future__ import annotations

from kserve_predictor.engines.base import Engine, LayoutPlan
from kserve_predictor.model.mlmodel import LIGHTGBM, ModelInfo


class LightGBMEngine(Engine):
    name = "lightgbm"
    model_format = "lightgbm"
    legacy_field = "lightgbm"
    protocol = "v1"
    runtime = "kserve-lgbserver"
    formats = (LIGHTGBM,)

    def unsupported_reason(self, info: ModelInfo) -> str | None:
        reason = super().unsupported_reason(info)
        if reason is None and info.serialization != "native":
            return (
                f"{info.model_path} is a {info.serialization}-serialized LightGBM sklearn model and "
                "lgbserver loads only Booster files; log model.booster_ with mlflow.lightgbm.log_model"
            )
        return reason

    def plan(self, info: ModelInfo, model_name: str) -> LayoutPlan:
        # lgbserver reads model.bst with lightgbm.Booster(model_file=...): MLflow's model.lgb
        # is that same text format under another name.
        return LayoutPlan(copies={"model.bst": info.model_path})
