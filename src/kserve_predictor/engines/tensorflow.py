"""TensorFlow Serving (kserve-tensorflow-serving, v1): ``<base>/<version>/saved_model.pb``."""

from __future__ import annotations

from kserve_predictor.engines.base import Engine, LayoutPlan, rename_tree
from kserve_predictor.model.mlmodel import KERAS, TENSORFLOW, ModelInfo

# Both KServe-supported TF servers load SavedModels only; a native Keras file needs re-logging.
KERAS_FILE_FIX = (
    "log it as a SavedModel with mlflow.keras.log_model(model, ..., save_exported_model=True)"
)
# The distributions that pin the TensorFlow a SavedModel was written with (requirements.txt).
TENSORFLOW_PACKAGES = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")


def savedmodel_reason(engine: Engine, info: ModelInfo) -> str | None:
    """Why a TF/Keras model cannot be served from a SavedModel, if it cannot."""
    if info.format in (TENSORFLOW, KERAS) and info.savedmodel_dir is None:
        return f"{info.model_path} is a native Keras file that {engine.runtime} cannot load; {KERAS_FILE_FIX}"
    return None


class TensorflowEngine(Engine):
    name = "tensorflow"
    model_format = "tensorflow"
    legacy_field = "tensorflow"
    protocol = "v1"
    runtime = "kserve-tensorflow-serving"
    formats = (TENSORFLOW, KERAS)

    def unsupported_reason(self, info: ModelInfo) -> str | None:
        return super().unsupported_reason(info) or savedmodel_reason(self, info)

    def plan(self, info: ModelInfo, model_name: str) -> LayoutPlan:
        assert info.savedmodel_dir is not None
        # TF Serving serves the highest numeric version folder under its model base path.
        return LayoutPlan(copies=rename_tree(list(info.files), info.savedmodel_dir, "1"))
