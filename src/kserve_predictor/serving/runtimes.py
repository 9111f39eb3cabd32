"""Load a converted layout the way the engine's KServe runtime does, and run it.

Each runtime takes model inputs (a numpy array, a DataFrame, or a dict of named arrays) and
returns either one array or a dict of named output arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Inputs = Any  # np.ndarray | pandas.DataFrame | dict[str, np.ndarray]
Outputs = Any  # np.ndarray | dict[str, np.ndarray]


class RuntimeLoadError(Exception):
    """The layout cannot be loaded; the message says why."""


def _only_file(folder: Path, extensions: tuple[str, ...]) -> Path:
    """Like KServe's sklearn/xgb/lgb servers: exactly one model file in the folder."""
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(extensions))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise RuntimeLoadError(
            f"expected exactly one {'/'.join(extensions)} file in {folder}, found {names}"
        )
    return found[0]


def _with_columns(inputs: Inputs, columns: Sequence[str] | None) -> Inputs:
    """Rows without names get the model's own feature names, as MLflow's pyfunc would give."""
    import pandas as pd

    if isinstance(inputs, dict):
        return pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in inputs.items()})
    if (
        isinstance(inputs, np.ndarray)
        and inputs.ndim == 2
        and columns
        and len(columns) == inputs.shape[1]
    ):
        return pd.DataFrame(inputs, columns=columns)
    return inputs


class Runtime:
    def predict(self, inputs: Inputs) -> Outputs:
        raise NotImplementedError

    def predict_with(self, inputs: Inputs, params: dict[str, Any] | None) -> Outputs:
        """predict with the request's parameters; only MLflow's pyfunc takes them."""
        return self.predict(inputs)


class SklearnRuntime(Runtime):
    def __init__(self, folder: Path) -> None:
        import joblib

        self.model = joblib.load(_only_file(folder, (".joblib", ".pkl", ".pickle")))
        names = getattr(self.model, "feature_names_in_", None)
        self.columns = [str(n) for n in names] if names is not None else None

    def predict(self, inputs: Inputs) -> Outputs:
        return np.asarray(self.model.predict(_with_columns(inputs, self.columns)))


class XGBoostRuntime(Runtime):
    def __init__(self, folder: Path) -> None:
        import xgboost as xgb

        self.xgb = xgb
        self.booster = xgb.Booster(model_file=str(_only_file(folder, (".bst", ".json", ".ubj"))))

    def predict(self, inputs: Inputs) -> Outputs:
        data = _with_columns(inputs, self.booster.feature_names)
        return np.asarray(self.booster.predict(self.xgb.DMatrix(data)))


class LightGBMRuntime(Runtime):
    def __init__(self, folder: Path) -> None:
        import lightgbm as lgb

        self.booster = lgb.Booster(model_file=str(_only_file(folder, (".bst",))))

    def predict(self, inputs: Inputs) -> Outputs:
        return np.asarray(self.booster.predict(_with_columns(inputs, self.booster.feature_name())))


class OnnxRuntime(Runtime):
    """Triton's onnxruntime backend: ``<repo>/<name>/1/model.onnx``."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()

    def predict(self, inputs: Inputs) -> Outputs:
        feed = _tensor_feed(inputs, [(i.name, _onnx_dtype(i.type)) for i in self.inputs])
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(None, feed), strict=True))


def _onnx_dtype(onnx_type: str) -> Any:
    table = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(bool)": np.bool_,
        "tensor(string)": np.object_,
    }
    return table.get(onnx_type, np.float32)


def _tensor_feed(inputs: Inputs, specs: list[tuple[str, Any]]) -> dict[str, np.ndarray]:
    """Map request inputs onto the model's named tensors, in their dtypes."""
    import pandas as pd

    if isinstance(inputs, pd.DataFrame):
        inputs = inputs.to_numpy()
    if isinstance(inputs, dict):
        missing = [name for name, _ in specs if name not in inputs]
        if missing and len(specs) == len(inputs) == 1:  # one unnamed tensor: take it
            inputs = {specs[0][0]: next(iter(inputs.values()))}
        elif missing:
            raise ValueError(
                f"inputs {missing} are missing; the model takes {[n for n, _ in specs]}"
            )
        return {name: np.asarray(inputs[name]).astype(dtype) for name, dtype in specs}
    if len(specs) != 1:
        raise ValueError(
            f"the model takes {len(specs)} named inputs {[n for n, _ in specs]}; send them by name"
        )
    return {specs[0][0]: np.asarray(inputs).astype(specs[0][1])}


class SavedModelRuntime(Runtime):
    """TF Serving (``<base>/<version>/``) and Triton's ``model.savedmodel``: serving_default."""

    def __init__(self, path: Path) -> None:
        try:
            import tensorflow as tf
        except ImportError as e:
            raise RuntimeLoadError(
                "serving a TensorFlow SavedModel needs TensorFlow: pip install 'fuseml-kserve-predictor[tensorflow]'"
            ) from e
        self.tf = tf
        self.function = tf.saved_model.load(str(path), tags=["serve"]).signatures["serving_default"]
        spec = self.function.structured_input_signature[1]
        self.specs = [(name, spec[name].dtype.as_numpy_dtype) for name in sorted(spec)]

    def predict(self, inputs: Inputs) -> Outputs:
        feed = _tensor_feed(inputs, self.specs)
        out = self.function(**{k: self.tf.constant(v) for k, v in feed.items()})
        return {name: value.numpy() for name, value in out.items()}


class PyfuncRuntime(Runtime):
    """MLServer's MLflow runtime: the MLflow folder through mlflow.pyfunc."""

    def __init__(self, folder: Path) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(str(folder))
        schema = self.model.metadata.get_input_schema()
        self.columns: list[str] | None = None
        self.tensor_dtype: Any = None
        if schema is not None and schema.is_tensor_spec():
            types = schema.numpy_types()
            self.tensor_dtype = types[0] if len(types) == 1 else None
        elif schema is not None and schema.has_input_names():
            self.columns = schema.input_names()

    def predict(self, inputs: Inputs) -> Outputs:
        return self.predict_with(inputs, None)

    def predict_with(self, inputs: Inputs, params: dict[str, Any] | None) -> Outputs:
        if self.tensor_dtype is not None and isinstance(inputs, np.ndarray):
            inputs = inputs.astype(self.tensor_dtype)  # JSON numbers arrive as float64
        result = self.model.predict(_with_columns(inputs, self.columns), params=params or None)
        if hasattr(result, "columns"):  # a DataFrame: keep the model's own output columns
            return {str(c): result[c].to_numpy() for c in result.columns}
        if hasattr(result, "to_numpy"):
            result = result.to_numpy()
        if isinstance(result, dict):
            return {k: np.asarray(v) for k, v in result.items()}
        return np.asarray(result)


def _tensorflow(folder: Path) -> Runtime:
    versions = sorted(
        (p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    if not versions:
        raise RuntimeLoadError(f"no numeric version folder in {folder}")
    return SavedModelRuntime(versions[-1])


def _triton(folder: Path) -> Runtime:
    models = [p for p in folder.iterdir() if p.is_dir()]
    if len(models) != 1:
        raise RuntimeLoadError(
            f"expected one model in the Triton repository {folder}, found {len(models)}"
        )
    version = models[0] / "1"
    if (version / "model.onnx").is_file():
        return OnnxRuntime(version / "model.onnx")
    if (version / "model.savedmodel" / "saved_model.pb").is_file():
        return SavedModelRuntime(version / "model.savedmodel")
    raise RuntimeLoadError(f"no model.onnx or model.savedmodel in {version}")


RUNTIMES: dict[str, Callable[[Path], Runtime]] = {
    "sklearn": SklearnRuntime,
    "xgboost": XGBoostRuntime,
    "lightgbm": LightGBMRuntime,
    "tensorflow": _tensorflow,
    "triton": _triton,
    "mlflow": PyfuncRuntime,
}


def load_runtime(engine: str, folder: Path) -> Runtime:
    """Load ``folder`` (a converted layout) as ``engine``'s runtime would."""
    try:
        return RUNTIMES[engine](folder)
    except RuntimeLoadError:
        raise
    except Exception as e:
        raise RuntimeLoadError(
            f"{engine} runtime cannot load {folder}: {type(e).__name__}: {e}"
        ) from e
