"""MLServer's MLflow runtime (kserve-mlserver, modelFormat mlflow, v2 only).

It loads the MLflow model folder itself through mlflow.pyfunc, so it serves any flavor, but it
does not install the model's requirements: the libraries in the MLServer image must match.
Auto-selected only for pyfunc-only (custom Python) models, which no other runtime serves.
"""

from __future__ import annotations

from kserve_predictor.engines.base import Engine, LayoutPlan
from kserve_predictor.model.mlmodel import (
    ALL_FORMATS,
    ModelInfo,
)


class MlflowEngine(Engine):
    name = "mlflow"
    model_format = "mlflow"
    legacy_field = ""  # no legacy field: needs the predictor.model style
    protocol = "v2"
    runtime = "kserve-mlserver"
    formats = ALL_FORMATS

    def plan(self, info: ModelInfo, model_name: str) -> LayoutPlan:
        return LayoutPlan(copies={f: f for f in info.files})
