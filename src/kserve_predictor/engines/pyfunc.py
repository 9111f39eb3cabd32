"""The project's own runtime (kserve-predictor-mlflow): any MLflow model through mlflow.pyfunc.

The layout is the MLflow model folder itself, as for MLServer, but the runtime is current
(MLflow 3, Python 3.11), installs the model's own requirements, and serves V1 and V2. The
InferenceService names the runtime explicitly: it is never auto-selected by KServe. Protocol v1:
the prediction URL is ``/v1/models/<name>:predict`` with MLflow-style ``instances`` (rows or
records); the same pod also answers V2 ``/v2/models/<name>/infer``.
"""

from __future__ import annotations

from kserve_predictor.engines.base import Engine, LayoutPlan
from kserve_predictor.engines.own_runtime import MODEL_FORMAT, NAME
from kserve_predictor.model.mlmodel import (
    ALL_FORMATS,
    ModelInfo,
)


class PyfuncEngine(Engine):
    name = "pyfunc"
    model_format = MODEL_FORMAT
    legacy_field = ""  # predictor.model only: the legacy fields cannot name a runtime
    protocol = "v1"
    runtime = NAME
    explicit_runtime = NAME
    formats = ALL_FORMATS

    def plan(self, info: ModelInfo, model_name: str) -> LayoutPlan:
        return LayoutPlan(copies={f: f for f in info.files})
