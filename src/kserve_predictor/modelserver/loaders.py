"""Load a converted layout the way the engine's KServe runtime does, and run it.

Each runtime takes model inputs already checked by ``protocol`` (a 2-D array or DataFrame for
table models, a dict of named arrays for tensor models) and returns either one array or a dict
of named output arrays. Table runtimes declare ``features`` (the row width the model takes),
tensor runtimes ``specs`` (each input's name, datatype and dims), for those checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kserve_predictor.errors import InvalidRequestError, RuntimeLoadError
from kserve_predictor.modelserver.protocol import TensorInput, v2_type

Inputs = Any  # np.ndarray | pandas.DataFrame | dict[str, np.ndarray]
Outputs = Any  # np.ndarray | dict[str, np.ndarray]


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
    features: int | None = None
    """Table models: the number of columns each row must have, when the model records it."""
    columns: list[str] | None = None
    """Table models: the column names the model was fitted on, when it records them."""
    specs: tuple[TensorInput, ...] = ()
    """Tensor models: the inputs the model declares."""

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
        width = getattr(self.model, "n_features_in_", None)
        self.features = int(width) if width is not None else None

    def predict(self, inputs: Inputs) -> Outputs:
        return np.asarray(self.model.predict(_with_columns(inputs, self.columns)))


class XGBoostRuntime(Runtime):
    def __init__(self, folder: Path) -> None:
        import xgboost as xgb

        self.xgb = xgb
        self.booster = xgb.Booster(model_file=str(_only_file(folder, (".bst", ".json", ".ubj"))))
        self.features = self.booster.num_features() or None
        self.columns = list(self.booster.feature_names or []) or None

    def predict(self, inputs: Inputs) -> Outputs:
        data = _with_columns(inputs, self.columns)
        return np.asarray(self.booster.predict(self.xgb.DMatrix(data)))


class LightGBMRuntime(Runtime):
    def __init__(self, folder: Path) -> None:
        import lightgbm as lgb

        self.booster = lgb.Booster(model_file=str(_only_file(folder, (".bst",))))
        self.features = self.booster.num_feature() or None
        self.columns = list(self.booster.feature_name()) or None

    def predict(self, inputs: Inputs) -> Outputs:
        return np.asarray(self.booster.predict(_with_columns(inputs, self.columns)))


class OnnxRuntime(Runtime):
    """Triton's onnxruntime backend: ``<repo>/<name>/1/model.onnx``."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.specs = tuple(
            TensorInput(i.name, _ONNX_TYPES.get(i.type, "BYTES"), _dims(i.shape))
            for i in self.session.get_inputs()
        )

    def predict(self, inputs: Inputs) -> Outputs:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(None, inputs), strict=True))


# onnxruntime's type names → V2 datatypes (Triton's mapping for the onnxruntime backend).
_ONNX_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def _dims(shape: Sequence[Any] | None) -> tuple[int, ...] | None:
    """Declared dims, with symbolic or unknown sizes as -1; None when the rank is unknown."""
    if shape is None:
        return None
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)


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
        self.specs = tuple(
            TensorInput(
                name,
                v2_type(spec[name].dtype.as_numpy_dtype),
                None if spec[name].shape.rank is None else _dims(spec[name].shape.as_list()),
            )
            for name in sorted(spec)
        )

    def predict(self, inputs: Inputs) -> Outputs:
        out = self.function(**{k: self.tf.constant(v) for k, v in inputs.items()})
        return {name: value.numpy() for name, value in out.items()}


class PyfuncRuntime(Runtime):
    """MLServer's MLflow runtime: the MLflow folder through mlflow.pyfunc."""

    def __init__(self, folder: Path) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(str(folder))
        schema = self.model.metadata.get_input_schema()
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
        from mlflow.exceptions import MlflowException

        try:
            result = self.model.predict(_with_columns(inputs, self.columns), params=params or None)
        except MlflowException as e:
            if e.error_code not in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
                raise
            # MLflow's schema enforcement: the request does not match the signature
            first = str(e.message).strip().splitlines()[0] if e.message else "schema mismatch"
            raise InvalidRequestError(
                f"the input does not match the model's signature: {first}"
            ) from e
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
    "pyfunc": PyfuncRuntime,
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
