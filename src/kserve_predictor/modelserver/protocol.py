"""Prediction requests as the cluster's runtimes accept them, and the 400s for the rest.

Four request styles, one per kind of KServe runtime (facts from their code and docs):

- **table** (kserve-sklearnserver, xgbserver, lgbserver; ``kserve.utils.get_predict_input``):
  V1 ``instances`` (or ``inputs``) as rows of numbers or as objects naming the columns; V2 the
  *first* input whatever its name, or every input as a column with ``parameters.content_type``
  ``pd``. KServe answers a wrong row width with the library's error and HTTP 500; here it is 400.
- **triton** (kserve-tritonserver, V2 only): every input named as the model names it, in its
  exact datatype, in a shape matching the model's dims (-1 is any size); Triton's messages.
- **tf-serving** (kserve-tensorflow-serving, V1 only): ``instances`` rows or columnar
  ``inputs``; JSON numbers become the signature's dtype; fixed dims are checked.
- **pyfunc** (kserve-mlserver's MLflow runtime, V2 only): one tensor, or named columns.

Every function raises InvalidRequestError, which the server answers with HTTP 400
``{"error": "..."}`` (KServe's error body), one log line and no traceback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kserve_predictor.errors import InvalidRequestError

V2_TYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


def v2_type(dtype: Any) -> str:
    """The V2 datatype name of a numpy dtype (strings and objects are BYTES)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "OUS":
        return "BYTES"
    for name, numpy_type in V2_TYPES.items():
        if dtype == np.dtype(numpy_type):
            return name
    return "BYTES"


@dataclass(frozen=True)
class TensorInput:
    """A model input as the runtime declares it: name, V2 datatype, dims (-1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...] | None

    @property
    def numpy_type(self) -> Any:
        return V2_TYPES.get(self.datatype, np.float32)


def _dims(shape: Sequence[int] | None) -> str:
    return "[" + ",".join(str(d) for d in shape or ()) + "]"


def _fits(shape: Sequence[int], dims: Sequence[int] | None) -> bool:
    if dims is None:
        return True
    return len(shape) == len(dims) and all(
        d < 0 or d == s for s, d in zip(shape, dims, strict=True)
    )


def require_object(payload: Any, key: str) -> list[Any]:
    """The non-empty list under ``key`` ("instances", V1) of a JSON object body."""
    if isinstance(payload, (bytes, bytearray, str)):
        raise InvalidRequestError(
            "the request body must be JSON, sent with Content-Type: application/json"
        )
    if not isinstance(payload, dict):
        raise InvalidRequestError(
            f'the request body must be a JSON object with "{key}"; got a JSON {_json_kind(payload)}'
        )
    rows = payload.get("instances", payload.get("inputs"))
    if rows is None:
        raise InvalidRequestError(
            f'the request body has no "{key}"; send {{"{key}": [[...], ...]}}'
        )
    if not isinstance(rows, list) or not rows:
        raise InvalidRequestError(f'"{key}" must be a non-empty list of rows')
    return rows


def _json_kind(value: Any) -> str:
    return {list: "list", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _table(rows: Any, features: int | None, where: str) -> np.ndarray:
    """Rows of numbers as a 2-D array, each as wide as the model's feature count."""
    array = np.asarray(rows, dtype=object) if _ragged(rows) else np.asarray(rows)
    if array.ndim != 2 or array.dtype == object:
        raise InvalidRequestError(
            f"{where} must be rows of numbers (a 2-D array); got shape {list(array.shape)}"
        )
    if array.dtype.kind not in "biuf":
        raise InvalidRequestError(f"{where} must hold numbers; got {array.dtype.kind!r} values")
    if features is not None and array.shape[1] != features:
        raise InvalidRequestError(
            f"{where}: the model expects {features} features per row, got {array.shape[1]}"
        )
    return array


def _ragged(rows: Any) -> bool:
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], list):
        return False
    return len({len(r) if isinstance(r, list) else -1 for r in rows}) > 1


def _frame(frame: Any, columns: Sequence[str] | None, where: str) -> Any:
    """Named columns: exactly the model's (in its order), when it records them."""
    if columns is None:
        return frame
    # LightGBM stores "petal width (cm)" as "petal_width_(cm)": either spelling names it.
    wanted = {_spelling(c): c for c in columns}
    given = {_spelling(c): c for c in frame.columns}
    missing = [c for key, c in wanted.items() if key not in given]
    unknown = [str(c) for key, c in given.items() if key not in wanted]
    if missing or unknown:
        problem = f"lack {missing}" if missing else f"have unknown columns {unknown}"
        raise InvalidRequestError(f"{where} {problem}; the model's columns are {list(columns)}")
    return frame[[given[key] for key in wanted]].set_axis(list(columns), axis=1)


def _spelling(column: Any) -> str:
    return re.sub(r"\s", "_", str(column))


def table_v1(payload: Any, features: int | None, columns: Sequence[str] | None = None) -> Any:
    """KServe's V1 rules for sklearn/xgboost/lightgbm: rows, or objects naming the columns."""
    import pandas as pd

    rows = require_object(payload, "instances")
    if isinstance(rows[0], dict) or (
        isinstance(rows[0], list) and rows[0] and isinstance(rows[0][0], dict)
    ):
        # as KServe: each instance is one DataFrame, {"col": [values]} or [{"col": value}, ...]
        try:
            frame = pd.concat([pd.DataFrame(r) for r in rows])
        except (TypeError, ValueError) as e:
            raise InvalidRequestError(
                'each instance must map columns to lists of values ({"col": [1.0, ...]}) or be '
                f'a list of rows ([{{"col": 1.0}}, ...]); {e}'
            ) from e
        return _frame(frame, columns, "instances")
    return _table(rows, features, "instances")


def table_v2(request: Any, features: int | None, columns: Sequence[str] | None = None) -> Any:
    """KServe's V2 rules for sklearn/xgboost/lightgbm: the first input, whatever its name."""
    inputs = _v2_inputs(request)
    if (request.parameters or {}).get("content_type") == "pd":
        try:
            frame = request.as_dataframe()
        except (TypeError, ValueError) as e:
            raise InvalidRequestError(f"the inputs cannot be read as columns: {e}") from e
        return _frame(frame, columns, "the inputs")
    if len(inputs) > 1:
        raise InvalidRequestError(
            f"the model takes one input tensor, got {len(inputs)}; send the rows as one 2-D "
            'input, or each column as an input with "parameters": {"content_type": "pd"}'
        )
    only = inputs[0]
    return _table(_as_numpy(only), features, f"input '{only.name}'")


def _v2_inputs(request: Any) -> list[Any]:
    if not request.inputs:
        raise InvalidRequestError('"inputs" is empty; send at least one input tensor')
    return list(request.inputs)


def _as_numpy(tensor: Any) -> np.ndarray:
    if tensor.datatype not in V2_TYPES:
        raise InvalidRequestError(
            f"input '{tensor.name}' has an unknown datatype {tensor.datatype!r}; use one of "
            + ", ".join(V2_TYPES)
        )
    shape = [int(d) for d in tensor.shape]
    if any(d < 0 for d in shape):
        raise InvalidRequestError(f"input '{tensor.name}' has a negative dim in {_dims(shape)}")
    try:
        return np.asarray(tensor.as_numpy())
    except (ValueError, TypeError) as e:
        raise InvalidRequestError(
            f"input '{tensor.name}': its data does not fill shape {_dims(shape)} "
            f"({math.prod(shape)} {tensor.datatype} values expected)"
        ) from e


def triton_v2(request: Any, specs: Sequence[TensorInput], model: str) -> dict[str, np.ndarray]:
    """Triton's checks: input names, count, datatypes and shapes against the model's."""
    inputs = list(request.inputs)
    known = {spec.name: spec for spec in specs}
    for tensor in inputs:
        if tensor.name not in known:
            raise InvalidRequestError(
                f"unexpected inference input '{tensor.name}' for model '{model}'; "
                f"its inputs are {', '.join(repr(n) for n in known)}"
            )
    given = [t.name for t in inputs]
    missing = [name for name in known if name not in given]
    if missing or len(given) != len(set(given)):
        raise InvalidRequestError(
            f"expected {len(specs)} inputs but got {len(inputs)} inputs for model '{model}'"
            + (f"; missing {', '.join(repr(n) for n in missing)}" if missing else "")
        )
    feed = {}
    for tensor in inputs:
        spec = known[tensor.name]
        if tensor.datatype != spec.datatype:
            raise InvalidRequestError(
                f"inference input '{tensor.name}' data-type is '{tensor.datatype}', "
                f"but model '{model}' expects '{spec.datatype}'"
            )
        shape = [int(d) for d in tensor.shape]
        if not _fits(shape, spec.shape):
            raise InvalidRequestError(
                f"unexpected shape for input '{tensor.name}' for model '{model}'. "
                f"Expected {_dims(spec.shape)}, got {_dims(shape)}"
            )
        feed[tensor.name] = _as_numpy(tensor)
    return feed


def tf_serving_v1(payload: Any, specs: Sequence[TensorInput]) -> dict[str, np.ndarray]:
    """TF Serving's REST predict: row ``instances`` or columnar ``inputs``, cast to the
    signature's dtypes (JSON numbers carry none), fixed dims checked."""
    if isinstance(payload, dict) and "instances" not in payload and "inputs" in payload:
        columns = payload["inputs"]
        if len(specs) == 1 and not isinstance(columns, dict):
            columns = {specs[0].name: columns}
    else:
        rows = require_object(payload, "instances")
        if len(specs) == 1 and not isinstance(rows[0], dict):
            columns = {specs[0].name: rows}
        elif all(isinstance(r, dict) for r in rows):
            columns = {s.name: [r.get(s.name) for r in rows] for s in specs}
        else:
            raise InvalidRequestError(
                f"the model takes {len(specs)} named inputs; send each instance as an object "
                f"with {', '.join(repr(s.name) for s in specs)}"
            )
    if not isinstance(columns, dict):
        raise InvalidRequestError('"inputs" must be an object naming each input')
    feed = {}
    for spec in specs:
        if spec.name not in columns or columns[spec.name] is None:
            raise InvalidRequestError(f"input '{spec.name}' is missing from the request")
        try:
            value = np.asarray(columns[spec.name], dtype=spec.numpy_type)
        except (TypeError, ValueError) as e:
            raise InvalidRequestError(
                f"input '{spec.name}' cannot be read as {spec.datatype}: {e}"
            ) from e
        if not _fits(list(value.shape), spec.shape):
            raise InvalidRequestError(
                f"input '{spec.name}' has shape {_dims(value.shape)}; the signature takes "
                f"{_dims(spec.shape)} (-1: any size)"
            )
        feed[spec.name] = value
    return feed


def pyfunc_v2(request: Any) -> Any:
    """MLServer's MLflow runtime: one tensor as is; several inputs (or ``pd``) as columns."""
    inputs = _v2_inputs(request)
    if (request.parameters or {}).get("content_type") == "pd":
        return request.as_dataframe()
    if len(inputs) == 1:
        return _as_numpy(inputs[0])
    return {t.name: _as_numpy(t) for t in inputs}


def pyfunc_v1(payload: Any) -> Any:
    """The project's own runtime (kserve-predictor-mlflow), V1: rows as an array, or objects
    naming the columns as a DataFrame, handed to mlflow.pyfunc as MLflow's scoring server does."""
    import pandas as pd

    rows = require_object(payload, "instances")
    if all(isinstance(r, dict) for r in rows):
        return pd.DataFrame(rows)
    try:
        return np.asarray(rows)
    except ValueError as e:
        raise InvalidRequestError(f'"instances" must be rows of equal length: {e}') from e


STYLES = {
    "sklearn": "table",
    "xgboost": "table",
    "lightgbm": "table",
    "triton": "triton",
    "tensorflow": "tf-serving",
    "mlflow": "pyfunc",
    "pyfunc": "mlflow-runtime",
}
"""Engine → the request style of its cluster runtime."""

PROTOCOLS = {
    "table": ("v1", "v2"),
    "triton": ("v2",),
    "tf-serving": ("v1",),
    "pyfunc": ("v2",),
    "mlflow-runtime": ("v1", "v2"),
}
"""The protocols each style's cluster runtime speaks; the other answers 404, as there."""
