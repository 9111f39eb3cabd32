"""KServe's sklearn server (kserve-sklearnserver, protocol v1): one joblib/pickle file."""

from __future__ import annotations

from kserve_predictor.engines.base import Engine, LayoutPlan
from kserve_predictor.model.mlmodel import SKLEARN, ModelInfo

# The server joblib.loads the single *.joblib|*.pkl|*.pickle file in its model folder; MLServer's
# sklearn runtime wants model.joblib|model.pkl|model.pickle. model.pkl suits both.
_TARGET = "model.pkl"


class SklearnEngine(Engine):
    name = "sklearn"
    model_format = "sklearn"
    legacy_field = "sklearn"
    protocol = "v1"
    runtime = "kserve-sklearnserver"
    formats = (SKLEARN,)

    def unsupported_reason(self, info: ModelInfo) -> str | None:
        reason = super().unsupported_reason(info)
        if reason is None and info.serialization == "skops":
            return (
                f"{info.model_path} is skops-serialized (MLflow's default) and KServe's sklearn "
                "runtimes load only joblib/pickle files; log it with "
                "mlflow.sklearn.log_model(..., serialization_format='cloudpickle')"
            )
        return reason

    def plan(self, info: ModelInfo, model_name: str) -> LayoutPlan:
        return LayoutPlan(copies={_TARGET: info.model_path})
