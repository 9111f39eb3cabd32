"""The compatibility rules, one by one (pure), and what the model's metadata and headers say."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kserve_predictor.compatibility import ADJUSTED, INCOMPATIBLE, OK, WARNING, check
from kserve_predictor.errors import UsageError
from kserve_predictor.mlmodel import describe_model
from kserve_predictor.model_needs import (
    ModelNeeds,
    describe_needs,
    onnx_ir_version,
    pickle_references,
    read_needs,
    xgboost_objective,
)
from kserve_predictor.modelurl import resolve
from kserve_predictor.runtime_libraries import lookup, parse_declared, split_image, with_tag
from kserve_predictor.runtime_selection import default_runtimes, select
from kserve_predictor.settings import S3Settings

PYFUNC_311 = {"loader_module": "mlflow.sklearn", "python_version": "3.11.7"}


def model(flavor: str, conf: dict, files: list[str], pyfunc: dict | None = None, reqs: str = ""):  # type: ignore[no-untyped-def]
    meta = {"flavors": {flavor: conf, "python_function": pyfunc or dict(PYFUNC_311)}}
    return describe_model("s3://b/m", yaml.safe_dump(meta), ["MLmodel", *files], reqs)


def sklearn(version: str = "1.9.1", serialization: str = "cloudpickle", files=()):  # type: ignore[no-untyped-def]
    conf = {"pickled_model": "model.pkl", "sklearn_version": version}
    conf["serialization_format"] = serialization
    return model("sklearn", conf, ["model.pkl", *files])


def xgb(version: str = "3.2.0"):  # type: ignore[no-untyped-def]
    return model("xgboost", {"data": "model.ubj", "xgb_version": version}, ["model.ubj"])


def onnx():  # type: ignore[no-untyped-def]
    return model("onnx", {"data": "model.onnx", "onnx_version": "1.23.2"}, ["model.onnx"])


def verdict(engine: str, info, needs: ModelNeeds, version=None, declared=None):  # type: ignore[no-untyped-def]
    from kserve_predictor.engines import ENGINES

    e = ENGINES[engine]
    selection = select(list(default_runtimes()), e.model_format, e.protocol, version)
    return check(engine, info, needs, selection, version, bool(version), declared)


def needs(info, **extra):  # type: ignore[no-untyped-def]
    base = describe_needs(info)
    return ModelNeeds(
        base.versions,
        base.requirements,
        extra.pop("code_paths", base.code_paths),
        extra.pop("pickle_refs", None),
        extra.pop("onnx_ir_version", None),
        extra.pop("xgboost_objective", None),
    )


# --- XGBoost base_score ------------------------------------------------------------------------


def test_xgboost_31_regression_on_xgbserver_is_incompatible() -> None:
    info = xgb("3.2.0")
    v = verdict("xgboost", info, needs(info, xgboost_objective="reg:squarederror"))
    assert v.status == INCOMPATIBLE and v.image == "kserve/xgbserver:v0.20.0"
    assert "xgboost 3.2.0" in v.problems[0] and "xgboost 2.1.4" in v.problems[0]


def test_xgboost_multiclass_softmax_is_only_a_warning_and_30_is_fine() -> None:
    info = xgb("3.2.0")
    assert (
        verdict("xgboost", info, needs(info, xgboost_objective="multi:softprob")).status == WARNING
    )
    old = xgb("3.0.5")
    assert verdict("xgboost", old, needs(old, xgboost_objective="reg:squarederror")).status == OK


def test_xgboost_rule_applies_on_mlserver_too() -> None:
    info = xgb("3.1.0")
    v = verdict("mlflow", info, needs(info, xgboost_objective="binary:logistic"))
    assert v.status == INCOMPATIBLE and "xgboost 2.1.2" in v.problems[0]


# --- scikit-learn ------------------------------------------------------------------------------


def test_sklearn_18_logistic_regression_is_incompatible_and_others_warn() -> None:
    info = sklearn("1.9.1")
    lr = verdict("sklearn", info, needs(info, pickle_refs=frozenset({"LogisticRegression"})))
    assert lr.status == INCOMPATIBLE and "predict_proba" in lr.problems[0]
    tree = verdict("sklearn", info, needs(info, pickle_refs=frozenset()))
    assert tree.status == WARNING and "InconsistentVersionWarning" in tree.problems[0]
    unread = verdict("sklearn", info, needs(info))  # too large to scan: assume the worst
    assert unread.status == INCOMPATIBLE and "possibly" in unread.problems[0]


def test_sklearn_same_minor_is_ok_and_17_is_a_warning() -> None:
    same = sklearn("1.5.0")
    assert verdict("sklearn", same, needs(same, pickle_refs=frozenset())).status == OK
    older = sklearn("1.7.2")
    lr = needs(older, pickle_refs=frozenset({"LogisticRegression"}))
    assert verdict("sklearn", older, lr).status == WARNING


def test_sklearn_code_paths_and_by_value_pickles_cannot_reach_sklearnserver() -> None:
    info = sklearn("1.5.2", files=["code/custom.py"])
    code = verdict("sklearn", info, needs(info, pickle_refs=frozenset()))
    assert code.status == INCOMPATIBLE and "code_paths" in code.problems[0]
    plain = sklearn("1.5.2")
    by_value = verdict("sklearn", plain, needs(plain, pickle_refs=frozenset({"cloudpickle"})))
    assert by_value.status == INCOMPATIBLE and "no cloudpickle" in by_value.problems[0]


def test_skops_models_cannot_load_on_mlflow_2() -> None:
    info = sklearn("1.5.2", serialization="skops")
    info = describe_model(
        "s3://b/m",
        yaml.safe_dump(
            {
                "flavors": {
                    "sklearn": {"pickled_model": "model.skops", "sklearn_version": "1.5.2"},
                    "python_function": PYFUNC_311,
                }
            }
        ),
        ["MLmodel", "model.skops"],
    )
    v = verdict("mlflow", info, needs(info))
    assert v.status == INCOMPATIBLE and "skops" in v.problems[0]


def test_by_value_pickles_across_python_minors_fail_on_mlserver() -> None:
    info = sklearn("1.5.2")
    v = verdict("mlflow", info, needs(info, pickle_refs=frozenset({"cloudpickle"})))
    assert v.status == INCOMPATIBLE and "Python 3.10" in v.problems[-1]


# --- pyfuncs on MLServer -----------------------------------------------------------------------


def pyfunc(reqs: str = "mlflow==3.17.2\ncloudpickle==3.1.3", code: bool = False):  # type: ignore[no-untyped-def]
    conf = {"loader_module": "mlflow.pyfunc.model", "python_model": "python_model.pkl"}
    conf["python_version"] = "3.11.7"
    if code:
        conf["code"] = "code"
    meta = {"flavors": {"python_function": conf}}
    files = ["MLmodel", "python_model.pkl", *(["code/m.py"] if code else [])]
    return describe_model("s3://b/m", yaml.safe_dump(meta), files, reqs)


def test_pyfunc_pickled_by_value_under_another_python_is_incompatible() -> None:
    info = pyfunc()
    v = verdict("mlflow", info, needs(info))
    assert v.status == INCOMPATIBLE and "Python 3.11.7" in v.problems[0]
    with_code = pyfunc(code=True)
    assert verdict("mlflow", with_code, needs(with_code)).status == WARNING


def test_pyfunc_requirements_missing_from_the_image_are_incompatible() -> None:
    info = pyfunc("mlflow==3.17.2\ntorch==2.9.0", code=True)
    v = verdict("mlflow", info, needs(info))
    assert v.status == INCOMPATIBLE and any("torch" in p for p in v.problems)


def test_mlserver_without_the_flavor_library_is_incompatible() -> None:
    info = onnx()
    v = verdict("mlflow", info, needs(info, onnx_ir_version=8))
    assert v.status == INCOMPATIBLE and "onnxruntime" in v.problems[0]


# --- ONNX on Triton ----------------------------------------------------------------------------


def test_onnx_ir_10_is_adjusted_to_a_triton_tag_that_reads_it() -> None:
    info = onnx()
    v = verdict("triton", info, needs(info, onnx_ir_version=10))
    assert v.status == ADJUSTED and v.runtime_version == "24.05-py3"
    assert v.image == "nvcr.io/nvidia/tritonserver:24.05-py3"
    assert verdict("triton", info, needs(info, onnx_ir_version=9)).status == OK


def test_onnx_ir_beyond_every_tag_or_under_an_explicit_tag_is_incompatible() -> None:
    info = onnx()
    assert verdict("triton", info, needs(info, onnx_ir_version=12)).status == INCOMPATIBLE
    pinned = verdict("triton", info, needs(info, onnx_ir_version=10), "23.05-py3")
    assert pinned.status == INCOMPATIBLE and pinned.runtime_version == "23.05-py3"
    assert "ir_version=9" in pinned.problems[0]


# --- TensorFlow Serving ------------------------------------------------------------------------


def savedmodel(tf: str):  # type: ignore[no-untyped-def]
    conf = {"saved_model_dir": "tf2model", "meta_graph_tags": ["serve"]}
    files = ["tf2model/saved_model.pb"]
    meta = {"flavors": {"tensorflow": conf, "python_function": PYFUNC_311}}
    return describe_model(
        "s3://b/m", yaml.safe_dump(meta), ["MLmodel", *files], f"tensorflow=={tf}"
    )


def test_tensorflow_version_becomes_the_tf_serving_tag_that_exists() -> None:
    info = savedmodel("2.19.1")  # TF Serving has 2.19.0, not 2.19.1
    v = verdict("tensorflow", info, needs(info))
    assert v.status == ADJUSTED and v.runtime_version == "2.19.0"
    assert v.image == "tensorflow/serving:2.19.0"


def test_tensorflow_without_a_known_tag_warns_and_asks_for_its_own_version() -> None:
    info = savedmodel("2.30.0")
    v = verdict("tensorflow", info, needs(info))
    assert v.status == WARNING and v.runtime_version == "2.30.0"
    older = verdict("tensorflow", savedmodel("2.19.0"), needs(savedmodel("2.19.0")), "2.14.1")
    assert older.status == WARNING and "older than the model" in older.problems[0]


# --- LightGBM, unknown images, declared libraries ----------------------------------------------


def test_lightgbm_within_a_major_is_ok_across_majors_a_warning() -> None:
    def lgb(version: str):  # type: ignore[no-untyped-def]
        return model("lightgbm", {"data": "model.lgb", "lgb_version": version}, ["model.lgb"])

    assert verdict("lightgbm", lgb("4.7.0"), needs(lgb("4.7.0"))).status == OK
    assert verdict("lightgbm", lgb("5.0.0"), needs(lgb("5.0.0"))).status == WARNING


def test_an_image_not_in_the_table_is_unknown_until_declared() -> None:
    info = sklearn("1.9.1")
    unknown = verdict("sklearn", info, needs(info, pickle_refs=frozenset()), "v0.99.0")
    assert unknown.status == WARNING
    assert (
        "kserve/sklearnserver:v0.99.0" in unknown.problems[0]
        and "--runtime-libraries" in unknown.problems[0]
    )
    declared = parse_declared("scikit-learn==1.9.1,numpy==2.4.6", "x", "--runtime-libraries")
    lr = needs(info, pickle_refs=frozenset({"LogisticRegression"}))
    assert verdict("sklearn", info, lr, "v0.99.0", declared).status == OK


@pytest.mark.parametrize(
    "text", ["scikit-learn", "scikit-learn>=1.5", "sk learn==1", "numpy==1,=="]
)
def test_declared_libraries_must_be_exact_pins(text: str) -> None:
    with pytest.raises(UsageError, match="NAME==VERSION"):
        parse_declared(text, "x", "--runtime-libraries")


def test_no_runtime_for_the_protocol_is_incompatible() -> None:
    info = sklearn("1.5.2")
    v = check("mlflow", info, needs(info), None, None, False)
    assert v.status == INCOMPATIBLE and v.runtime is None


# --- the table and images ----------------------------------------------------------------------


def test_the_table_covers_the_default_images_of_kserve_014_to_020() -> None:
    for release in ("v0.14.0", "v0.15.0", "v0.16.0", "v0.17.0", "v0.18.0", "v0.19.0", "v0.20.0"):
        for server in ("sklearnserver", "xgbserver", "lgbserver"):
            assert lookup(f"kserve/{server}:{release}") is not None, (server, release)
    for image in (
        "docker.io/seldonio/mlserver:1.7.1",
        "seldonio/mlserver:1.5.0",
        "nvcr.io/nvidia/tritonserver:23.05-py3",
        "tensorflow/serving:2.6.2",
    ):
        assert lookup(image) is not None, image
    for runtime in default_runtimes():
        if runtime.name in ("kserve-sklearnserver", "kserve-xgbserver", "kserve-lgbserver"):
            assert lookup(runtime.image) is not None


def test_image_tags_are_replaced_as_kserve_applies_runtime_version() -> None:
    assert with_tag("kserve/sklearnserver:v0.20.0", "v0.19.0") == "kserve/sklearnserver:v0.19.0"
    assert with_tag("localhost:5000/sklearnserver", "v1") == "localhost:5000/sklearnserver:v1"
    assert split_image("docker.io/seldonio/mlserver:1.7.1") == ("seldonio/mlserver", "1.7.1")


# --- what the model needs, from metadata and file headers --------------------------------------


def test_onnx_ir_version_is_the_first_varint() -> None:
    assert onnx_ir_version(bytes([0x08, 0x0A, 0x12])) == 10
    assert onnx_ir_version(bytes([0x08, 0x81, 0x01])) == 129
    assert onnx_ir_version(b"\x12\x03abc") is None and onnx_ir_version(b"") is None


def test_xgboost_objective_is_read_from_the_file_tail() -> None:
    tail = b'"learner_model_param":{},"objective":{"name":"reg:squarederror","reg_loss_param":{}}}'
    assert xgboost_objective(tail) == "reg:squarederror"
    assert xgboost_objective(b"nothing here") is None


def test_pickle_references_are_a_byte_search() -> None:
    data = b"\x80\x05\x95..\x8c\x1esklearn.linear_model._logistic\x94\x8c\x12LogisticRegression"
    assert pickle_references(data) == frozenset({"LogisticRegression"})


def test_requirements_and_python_env_give_versions() -> None:
    info = savedmodel("2.19.1")
    got = describe_needs(info, "python: 3.11.9\nbuild_dependencies: [pip]\n")
    assert got.version("tensorflow") == "2.19.1" and got.version("python") == "3.11.9"
    assert got.requirements == ("tensorflow",)


def test_read_needs_reads_headers_without_loading(zoo: Path) -> None:
    from kserve_predictor.mlmodel import read_model

    location = resolve(str(zoo / "onnx"), S3Settings())
    got = read_needs(location, read_model(location))
    import onnx as onnx_lib

    assert got.onnx_ir_version == onnx_lib.load(str(zoo / "onnx" / "model.onnx")).ir_version
    location = resolve(str(zoo / "xgboost"), S3Settings())
    assert read_needs(location, read_model(location)).xgboost_objective == "multi:softprob"
    location = resolve(str(zoo / "sklearn_pickle"), S3Settings())
    needs_of_lr = read_needs(location, read_model(location))
    assert needs_of_lr.pickle_refs == frozenset({"LogisticRegression"})
    assert needs_of_lr.version("scikit-learn") and needs_of_lr.version("python")
