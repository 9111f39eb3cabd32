"""MLmodel → ModelInfo: what a model is, read from its metadata only.

The functions here never load, unpickle or execute a model. ``describe_model`` is pure: it takes
the MLmodel text and the list of files in the model folder; ``read_model`` fetches those from a
store.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from kserve_predictor.errors import ModelFormatError
from kserve_predictor.model.urls import ModelLocation

# Formats a model can have, as the engines see them.
SKLEARN = "sklearn"
XGBOOST = "xgboost"
LIGHTGBM = "lightgbm"
ONNX = "onnx"
TENSORFLOW = "tensorflow"  # a TensorFlow SavedModel
KERAS = "keras"  # a Keras model: a native .keras/.h5 file, or exported as a SavedModel
PYFUNC = "pyfunc"  # only the python_function flavor: custom Python code
ALL_FORMATS = (PYFUNC, SKLEARN, XGBOOST, LIGHTGBM, ONNX, TENSORFLOW, KERAS)
"""Every format above: what an engine that loads any MLflow model (through mlflow.pyfunc) takes."""

# The folder our conversions are written to, inside the model folder; never part of the model.
CONVERTED_DIR = "kserve"
MLMODEL_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TensorSpec:
    """One input or output column/tensor of the MLflow signature."""

    name: str | None
    dtype: str
    shape: tuple[int, ...] | None  # None for column (non-tensor) signatures


@dataclass(frozen=True)
class ModelInfo:
    """A typed description of an MLflow model folder."""

    url: str
    format: str
    flavors: dict[str, dict[str, Any]]
    model_path: str
    """The model's own file or folder, relative to the model folder (e.g. model.pkl, tf2model)."""
    files: tuple[str, ...]
    """Every file of the model folder, relative to it (conversions excluded)."""
    serialization: str | None = None
    """pickle, cloudpickle or skops where the flavor records it; native formats give None."""
    savedmodel_dir: str | None = None
    """For TensorFlow/Keras: the folder holding saved_model.pb, when there is one."""
    library_versions: dict[str, str] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    input_example: dict[str, Any] | None = None
    """``saved_input_example_info`` as MLflow records it (artifact_path, type, ...)."""
    model_size_bytes: int | None = None

    def model_files(self) -> list[str]:
        """The files that make up the model itself (one file, or all files of its folder)."""
        if self.model_path in self.files:
            return [self.model_path]
        folder = self.model_path.rstrip("/") + "/"
        return [f for f in self.files if f.startswith(folder)]


def read_model(location: ModelLocation) -> ModelInfo:
    """Read the file listing, MLmodel and requirements.txt from the store; never model bytes."""
    files = [location.relative(o.key) for o in location.listing()]
    files = [f for f in files if not f.startswith(CONVERTED_DIR + "/")]
    if "MLmodel" not in files:
        hint = "it has no MLmodel file" if files else "nothing is stored there"
        raise ModelFormatError(
            f"{location.url} is not an MLflow model folder ({hint}); give the folder that holds MLmodel"
        )
    text = location.read("MLmodel", MLMODEL_MAX_BYTES) or b""
    requirements = b""
    if "requirements.txt" in files:
        requirements = location.read("requirements.txt", MLMODEL_MAX_BYTES) or b""
    return describe_model(
        location.url,
        text.decode("utf-8", "replace"),
        files,
        requirements.decode("utf-8", "replace"),
    )


def describe_model(
    url: str, mlmodel_text: str, files: list[str], requirements: str = ""
) -> ModelInfo:
    """Build a ModelInfo from MLmodel text and the folder's file list (pure)."""
    try:
        meta = yaml.safe_load(mlmodel_text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ModelFormatError(
            f"{url}/MLmodel is not valid YAML{where}; re-log the model with MLflow"
        ) from e
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("flavors"), dict)
        or not meta["flavors"]
    ):
        raise ModelFormatError(
            f"{url}/MLmodel has no 'flavors' mapping; re-log the model with MLflow"
        )
    flavors = {str(k): (v if isinstance(v, dict) else {}) for k, v in meta["flavors"].items()}
    file_set = set(files)
    for flavor_name, detect in _FLAVOR_DETECTORS:
        if flavor_name in flavors:
            fmt, model_path, extra = detect(url, flavors[flavor_name], file_set)
            break
    else:
        known = ", ".join(name for name, _ in _FLAVOR_DETECTORS)
        raise ModelFormatError(
            f"{url}/MLmodel has no supported flavor (found: {', '.join(sorted(flavors))}; "
            f"supported: {known})"
        )
    inputs, outputs = _signature(url, meta.get("signature"))
    return ModelInfo(
        url=url,
        format=fmt,
        flavors=flavors,
        model_path=model_path,
        files=tuple(sorted(files)),
        serialization=extra.get("serialization"),
        savedmodel_dir=extra.get("savedmodel_dir"),
        library_versions=_library_versions(meta, flavors),
        requirements=tuple(_requirement_lines(requirements)),
        inputs=inputs,
        outputs=outputs,
        input_example=meta.get("saved_input_example_info") or None,
        model_size_bytes=meta.get("model_size_bytes"),
    )


def _inside(url: str, flavor: str, value: object) -> str:
    """A flavor's file path, checked to stay inside the model folder."""
    if not isinstance(value, str) or not value.strip():
        raise ModelFormatError(
            f"{url}/MLmodel: flavor {flavor!r} names no model file; re-log the model"
        )
    path = value.strip()
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal == ".." or normal.startswith("../") or "\\" in path:
        raise ModelFormatError(
            f"{url}/MLmodel: flavor {flavor!r} points at {path!r}, outside the model folder; "
            "re-log the model with MLflow"
        )
    return normal


def _require(url: str, path: str, files: set[str], as_folder: bool = False) -> None:
    present = any(f.startswith(path + "/") for f in files) if as_folder else path in files
    if not present:
        raise ModelFormatError(f"{url}: MLmodel names {path!r}, which is not in the model folder")


Detected = tuple[str, str, dict[str, str]]


def _detect_sklearn(url: str, conf: dict[str, Any], files: set[str]) -> Detected:
    path = _inside(url, "sklearn", conf.get("pickled_model"))
    _require(url, path, files)
    serialization = conf.get("serialization_format") or (
        "skops" if path.endswith(".skops") else "pickle"
    )
    return SKLEARN, path, {"serialization": str(serialization)}


def _detect_xgboost(url: str, conf: dict[str, Any], files: set[str]) -> Detected:
    path = _inside(url, "xgboost", conf.get("data"))
    _require(url, path, files)
    return XGBOOST, path, {"serialization": _file_serialization(path)}


def _detect_lightgbm(url: str, conf: dict[str, Any], files: set[str]) -> Detected:
    path = _inside(url, "lightgbm", conf.get("data"))
    _require(url, path, files)
    # A Booster is saved in LightGBM's own text format whatever serialization_format says;
    # the sklearn wrappers are saved with skops or pickle.
    return LIGHTGBM, path, {"serialization": _file_serialization(path)}


def _file_serialization(path: str) -> str:
    """skops, pickle, or native (the library's own format: ubj, json, lgb, bst, ...)."""
    if path.endswith(".skops"):
        return "skops"
    return "pickle" if path.endswith((".pkl", ".pickle", ".joblib")) else "native"


def _detect_onnx(url: str, conf: dict[str, Any], files: set[str]) -> Detected:
    path = _inside(url, "onnx", conf.get("data"))
    _require(url, path, files)
    return ONNX, path, {"serialization": "native"}


def _detect_keras(url: str, conf: dict[str, Any], files: set[str]) -> Detected:
    data = _inside(url, "keras", conf.get("data", "data"))
    return _keras_layout(url, data, files)


def _keras_layout(url: str, data: str, files: set[str]) -> Detected:
    """Keras stores either an exported SavedModel (data/model/) or a native file."""
    if f"{data}/model/saved_model.pb" in files:
        return KERAS, f"{data}/model", {"savedmodel_dir": f"{data}/model"}
    for name in ("model.keras", "model.h5"):
        if f"{data}/{name}" in files:
            return KERAS, f"{data}/{name}", {}
    if f"{data}/saved_model.pb" in files:
        return KERAS, data, {"savedmodel_dir": data}
    raise ModelFormatError(f"{url}: the Keras model files under {data!r} are missing")


def _detect_tensorflow(url: str, conf: dict[str, Any], files: set[str]) -> Detected:
    if conf.get("saved_model_dir"):  # tf.Module / estimator: tfmodel/ or tf2model/
        path = _inside(url, "tensorflow", conf["saved_model_dir"])
        if f"{path}/saved_model.pb" not in files:
            raise ModelFormatError(
                f"{url}: MLmodel names SavedModel {path!r}, which has no saved_model.pb"
            )
        return TENSORFLOW, path, {"savedmodel_dir": path}
    # A Keras model logged through mlflow.tensorflow: data/model.keras, or data/model/ (MLflow 2).
    data = _inside(url, "tensorflow", conf.get("data", "data"))
    return _keras_layout(url, data, files)


def _detect_pyfunc(url: str, conf: dict[str, Any], files: set[str]) -> Detected:
    for key in ("python_model", "data", "model_path"):
        if conf.get(key):
            return PYFUNC, _inside(url, "python_function", conf[key]), {}
    return PYFUNC, "", {}


# Checked in this order: a native flavor wins over python_function.
_FLAVOR_DETECTORS: list[tuple[str, Callable[[str, dict[str, Any], set[str]], Detected]]] = [
    ("sklearn", _detect_sklearn),
    ("xgboost", _detect_xgboost),
    ("lightgbm", _detect_lightgbm),
    ("onnx", _detect_onnx),
    ("keras", _detect_keras),
    ("tensorflow", _detect_tensorflow),
    ("python_function", _detect_pyfunc),
]

_VERSION_KEYS = {
    "sklearn_version": "scikit-learn",
    "xgb_version": "xgboost",
    "lgb_version": "lightgbm",
    "onnx_version": "onnx",
    "keras_version": "keras",
    "python_version": "python",
    "cloudpickle_version": "cloudpickle",
}


def _library_versions(meta: dict[str, Any], flavors: dict[str, dict[str, Any]]) -> dict[str, str]:
    versions = {"mlflow": str(meta["mlflow_version"])} if meta.get("mlflow_version") else {}
    for conf in flavors.values():
        for key, library in _VERSION_KEYS.items():
            if conf.get(key):
                versions[library] = str(conf[key])
    return versions


def _requirement_lines(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _signature(
    url: str, signature: object
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    if not isinstance(signature, dict):
        return (), ()
    try:
        return _specs(signature.get("inputs")), _specs(signature.get("outputs"))
    except (ValueError, TypeError, AttributeError) as e:
        raise ModelFormatError(
            f"{url}/MLmodel has an unreadable signature ({e}); re-log the model"
        ) from e


def _specs(text: object) -> tuple[TensorSpec, ...]:
    if not text:
        return ()
    items: list[dict[str, Any]] = json.loads(text) if isinstance(text, str) else list(text)  # type: ignore[call-overload]
    specs = []
    for item in items:
        tensor = item.get("tensor-spec")
        if tensor:
            specs.append(
                TensorSpec(
                    item.get("name"), str(tensor["dtype"]), tuple(int(d) for d in tensor["shape"])
                )
            )
        else:
            specs.append(TensorSpec(item.get("name"), str(item.get("type", "any")), None))
    return tuple(specs)
