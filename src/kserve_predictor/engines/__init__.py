"""The predictor engine registry: model format → engine, and checks of an explicit choice."""

from __future__ import annotations

from kserve_predictor.engines.base import Engine, LayoutPlan, prediction_path
from kserve_predictor.engines.lightgbm import LightGBMEngine
from kserve_predictor.engines.mlflow_pyfunc import MlflowEngine
from kserve_predictor.engines.pyfunc import PyfuncEngine
from kserve_predictor.engines.sklearn import SklearnEngine
from kserve_predictor.engines.tensorflow import TensorflowEngine
from kserve_predictor.engines.triton import TritonEngine
from kserve_predictor.engines.xgboost import XGBoostEngine
from kserve_predictor.errors import PredictorMismatchError, UsageError
from kserve_predictor.model.mlmodel import (
    KERAS,
    LIGHTGBM,
    ONNX,
    PYFUNC,
    SKLEARN,
    TENSORFLOW,
    XGBOOST,
    ModelInfo,
)

__all__ = [
    "AUTO",
    "ENGINES",
    "Engine",
    "LayoutPlan",
    "accepting_engines",
    "choose_engine",
    "prediction_path",
]

AUTO = "auto"

ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        SklearnEngine(),
        TensorflowEngine(),
        TritonEngine(),
        XGBoostEngine(),
        LightGBMEngine(),
        MlflowEngine(),
        PyfuncEngine(),
    )
}

# What `auto` picks: FuseML's mapping (sklearn → sklearn, SavedModel → tensorflow, Keras and ONNX
# → triton), extended with the dedicated XGBoost/LightGBM servers and MLServer for custom pyfunc.
AUTO_ENGINE = {
    SKLEARN: "sklearn",
    TENSORFLOW: "tensorflow",
    KERAS: "triton",
    ONNX: "triton",
    XGBOOST: "xgboost",
    LIGHTGBM: "lightgbm",
    PYFUNC: "mlflow",
}


def accepting_engines(info: ModelInfo) -> list[str]:
    """Every engine that can serve this model as it is logged."""
    return [name for name, engine in ENGINES.items() if engine.unsupported_reason(info) is None]


def choose_engine(info: ModelInfo, predictor: str) -> Engine:
    """The engine for ``predictor`` (or auto), checked against the model's format."""
    predictor = (predictor or AUTO).strip().lower()
    if predictor != AUTO and predictor not in ENGINES:
        raise UsageError(
            f"unknown predictor {predictor!r}; use one of: {AUTO}, {', '.join(ENGINES)}"
        )
    name = AUTO_ENGINE[info.format] if predictor == AUTO else predictor
    engine = ENGINES[name]
    reason = engine.unsupported_reason(info)
    if reason is None:
        return engine
    others = [e for e in accepting_engines(info) if e != name]
    alternatives = f"; predictors that accept it: {', '.join(others)}" if others else ""
    raise PredictorMismatchError(
        f"predictor {name!r} cannot serve {info.url}: {reason}{alternatives}"
    )
