"""Detection on real MLflow models: format, model files, engine choice, runtime version."""

from __future__ import annotations

from pathlib import Path

import pytest

from kserve_predictor.choice.detect import detect
from kserve_predictor.engines import ENGINES, accepting_engines, choose_engine
from kserve_predictor.engines.base import pinned_version
from kserve_predictor.errors import ModelFormatError, PredictorMismatchError, UsageError
from kserve_predictor.model import mlmodel
from kserve_predictor.model.urls import resolve
from kserve_predictor.settings.groups import S3Settings

# name → (format, engine auto picks or None, model files)
EXPECTED = {
    "sklearn_pickle": ("sklearn", "sklearn", ["model.pkl"]),
    "sklearn_skops": ("sklearn", None, ["model.skops"]),
    "onnx": ("onnx", "triton", ["model.onnx"]),
    "keras_native": ("keras", None, ["data/model.keras"]),
    "keras_exported": ("keras", "triton", ["data/model/saved_model.pb"]),
    "keras_legacy_data_model": ("keras", "triton", ["data/model/saved_model.pb"]),
    "tf_module": ("tensorflow", "tensorflow", ["tf2model/saved_model.pb"]),
    "tf_legacy_tfmodel": ("tensorflow", "tensorflow", ["tfmodel/saved_model.pb"]),
    "xgboost": ("xgboost", "xgboost", ["model.ubj"]),
    "lightgbm": ("lightgbm", "lightgbm", ["model.lgb"]),
    "lightgbm_sklearn": ("lightgbm", None, ["model.skops"]),
    "pyfunc": ("pyfunc", "mlflow", []),
}


def _detect(zoo: Path, name: str, predictor: str = "auto"):  # type: ignore[no-untyped-def]
    return detect(resolve(str(zoo / name), S3Settings()), predictor)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detects_every_layout(zoo: Path, name: str) -> None:
    fmt, engine, files = EXPECTED[name]
    d = _detect(zoo, name)
    assert d.info.format == fmt
    assert (d.engine.name if d.engine else None) == engine
    for f in files:
        assert f in d.info.model_files()
    assert "MLmodel" not in d.info.model_files()
    if engine is None:
        assert d.problem and "log" in d.problem  # says how to log it instead


def test_signature_and_versions_are_read(zoo: Path) -> None:
    info = _detect(zoo, "onnx").info
    assert [(s.name, s.dtype, s.shape) for s in info.inputs] == [("X", "float32", (-1, 4))]
    assert [s.name for s in info.outputs] == ["label", "probabilities"]
    assert info.library_versions["onnx"] and info.library_versions["mlflow"].startswith("3.")
    sk = _detect(zoo, "sklearn_pickle").info
    assert sk.serialization == "cloudpickle"
    assert sk.inputs[0].name == "sepal length (cm)" and sk.inputs[0].shape is None
    assert sk.input_example and sk.input_example["artifact_path"] == "input_example.json"


def test_tensorflow_runtime_version_comes_from_requirements(zoo: Path) -> None:
    import tensorflow as tf  # the version MLflow recorded when the zoo was made

    d = _detect(zoo, "tf_module")
    assert d.runtime_version == tf.__version__.split("rc")[0]
    assert (
        detect(resolve(str(zoo / "tf_module"), S3Settings()), "auto", "2.14.1").runtime_version
        == "2.14.1"
    )


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["tensorflow==2.15.1"], "2.15.1"),
        (["tensorflow-cpu == 2.16.2 ; python_version >= '3.9'"], "2.16.2"),
        (["tensorflow>=2.10"], None),
        (["numpy==1.26.4", "tensorflow-intel===2.13.0"], "2.13.0"),
        (["tensorflow==2.17.0rc1"], "2.17.0"),
        (["not a requirement ==", "tensorflow[and-cuda]==2.18.0"], "2.18.0"),
    ],
)
def test_pinned_version_parses_specifiers(lines: list[str], expected: str | None) -> None:
    assert (
        pinned_version(tuple(lines), ("tensorflow", "tensorflow-cpu", "tensorflow-intel"))
        == expected
    )


def test_bad_runtime_version_is_a_usage_error(zoo: Path) -> None:
    with pytest.raises(UsageError, match="image tag"):
        detect(resolve(str(zoo / "tf_module"), S3Settings()), "auto", "2.14; rm -rf /")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken_no_mlmodel", "not an MLflow model folder"),
        ("broken_not_yaml", "not valid YAML"),
        ("broken_unknown_flavor", "no supported flavor .*h2o"),
        ("broken_escaping_path", "outside the model folder"),
    ],
)
def test_broken_models_are_refused(zoo: Path, name: str, message: str) -> None:
    with pytest.raises(ModelFormatError, match=message):
        _detect(zoo, name)


def test_explicit_predictor_is_checked_against_the_format(zoo: Path) -> None:
    with pytest.raises(PredictorMismatchError) as e:
        _detect(zoo, "onnx", "sklearn")
    assert "onnx model" in str(e.value) and "triton" in str(e.value)
    assert _detect(zoo, "tf_module", "triton").engine is ENGINES["triton"]
    with pytest.raises(UsageError, match="unknown predictor 'pytorch'"):
        _detect(zoo, "onnx", "pytorch")


def test_native_keras_fails_with_how_to_log_it(zoo: Path) -> None:
    with pytest.raises(PredictorMismatchError, match="save_exported_model=True"):
        _detect(zoo, "keras_native", "triton")


def test_skops_sklearn_fails_with_how_to_log_it(zoo: Path) -> None:
    d = _detect(zoo, "sklearn_skops")
    with pytest.raises(PredictorMismatchError, match="serialization_format='cloudpickle'"):
        d.require_engine()


def test_describe_model_handles_absolute_and_missing_paths() -> None:
    text = "flavors:\n  onnx:\n    data: /etc/model.onnx\n"
    with pytest.raises(ModelFormatError, match="outside the model folder"):
        mlmodel.describe_model("m", text, ["MLmodel"])
    with pytest.raises(ModelFormatError, match="not in the model folder"):
        mlmodel.describe_model("m", "flavors:\n  onnx:\n    data: model.onnx\n", ["MLmodel"])
    with pytest.raises(ModelFormatError, match="no 'flavors'"):
        mlmodel.describe_model("m", "just a string", ["MLmodel"])


def test_native_flavor_wins_over_pyfunc() -> None:
    text = "flavors:\n  python_function:\n    loader_module: mlflow.onnx\n    data: model.onnx\n  onnx:\n    data: model.onnx\n"
    info = mlmodel.describe_model("m", text, ["MLmodel", "model.onnx"])
    assert info.format == "onnx"
    assert choose_engine(info, "auto").name == "triton"
    assert accepting_engines(info) == ["triton", "mlflow", "pyfunc"]


def test_example_requests_from_the_signature(zoo: Path) -> None:
    from kserve_predictor.modelserver.smoke import build_request, signature_rows

    onnx = _detect(zoo, "onnx").info
    assert signature_rows(onnx) == [[0.0, 0.0, 0.0, 0.0]]
    body = build_request([[1.0, 2.0, 3.0, 4.0]], "v2", onnx)
    assert body["inputs"][0]["name"] == "X" and body["inputs"][0]["datatype"] == "FP32"
    assert body["inputs"][0]["shape"] == [1, 4]
    tabular = _detect(zoo, "sklearn_pickle").info
    assert signature_rows(tabular) == [[0.0] * 4]
    assert build_request([[1, 2, 3, 4]], "v1", tabular) == {"instances": [[1, 2, 3, 4]]}
