"""The compatibility rules, one by one (pure), and what the model's metadata and headers say."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kserve_predictor.choice.compatibility import check
from kserve_predictor.choice.image_libraries import lookup, parse_declared, split_image, with_tag
from kserve_predictor.choice.needs import (
    ModelNeeds,
    describe_needs,
    onnx_ir_version,
    pickle_references,
    read_needs,
    xgboost_objective,
)
from kserve_predictor.choice.runtime_selection import default_runtimes, select
from kserve_predictor.choice.verdict import ADJUSTED, INCOMPATIBLE, OK, WARNING
from kserve_predictor.errors import UsageError
from kserve_predictor.model.mlmodel import describe_model
from kserve_predictor.model.urls import resolve
from kserve_predictor.settings.groups import S3Settings

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


def verdict(engine: str, info, needs: ModelNeeds, version=None, declared=None, proba=False):  # type: ignore[no-untyped-def]
    from kserve_predictor.choice.runtime_selection import ServingRuntime
    from kserve_predictor.engines import ENGINES
    from kserve_predictor.kserve.runtime_manifest import serving_runtime

    e = ENGINES[engine]
    runtimes = [*default_runtimes(), ServingRuntime.from_object(serving_runtime())]
    selection = select(runtimes, e.model_format, e.protocol, version, explicit=e.explicit_runtime)
    asked = {"predict_proba": True} if proba else {}
    return check(engine, info, needs, selection, version, bool(version), declared, **asked)


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


def test_sklearn_18_logistic_regression_warns_where_the_server_calls_predict() -> None:
    # kserve/sklearnserver calls predict unless PREDICT_PROBA=true; a 1.9 LogisticRegression
    # answers predict correctly on 1.5.2 and fails only in predict_proba.
    info = sklearn("1.9.1")
    lr_needs = needs(info, pickle_refs=frozenset({"LogisticRegression"}))
    lr = verdict("sklearn", info, lr_needs)
    assert lr.status == WARNING, lr
    assert "calls predict," in lr.problems[0] and "PREDICT_PROBA=true" in lr.problems[0]
    asked = verdict("sklearn", info, lr_needs, proba=True)
    assert asked.status == INCOMPATIBLE and "calls predict_proba" in asked.problems[0]
    tree = verdict("sklearn", info, needs(info, pickle_refs=frozenset()))
    assert tree.status == WARNING and "InconsistentVersionWarning" in tree.problems[0]
    tree_asked = verdict("sklearn", info, needs(info, pickle_refs=frozenset()), proba=True)
    assert tree_asked.status == WARNING
    unread = verdict("sklearn", info, needs(info))  # too large to scan: say what is unknown
    assert unread.status == WARNING and "possibly" in unread.problems[0]
    assert verdict("sklearn", info, needs(info), proba=True).status == INCOMPATIBLE


def test_on_mlserver_the_logistic_regression_verdict_follows_the_models_predict_fn() -> None:
    # MLServer's mlflow runtime calls the pyfunc, which calls MLmodel's python_function.predict_fn.
    def logged(predict_fn: str | None):  # type: ignore[no-untyped-def]
        pyfunc = {"loader_module": "mlflow.sklearn", "python_version": "3.10.12"}
        if predict_fn:
            pyfunc["predict_fn"] = predict_fn
        conf = {"pickled_model": "model.pkl", "sklearn_version": "1.9.1"}
        conf["serialization_format"] = "cloudpickle"
        return model("sklearn", conf, ["model.pkl"], pyfunc)

    lr = frozenset({"LogisticRegression"})
    for predict_fn in (None, "predict"):
        info = logged(predict_fn)
        assert verdict("mlflow", info, needs(info, pickle_refs=lr)).status == WARNING
    proba = logged("predict_proba")
    v = verdict("mlflow", proba, needs(proba, pickle_refs=lr))
    assert v.status == INCOMPATIBLE and "pyfunc_predict_fn" in v.problems[0]
    # PREDICT_PROBA is sklearnserver's switch: MLServer ignores it and answers predict.
    info = logged(None)
    ignored = verdict("mlflow", info, needs(info, pickle_refs=lr), proba=True)
    assert ignored.status == INCOMPATIBLE and "only kserve-sklearnserver" in ignored.problems[0]


def test_sklearn_same_minor_is_ok_and_17_is_a_warning() -> None:
    same = sklearn("1.5.0")
    assert verdict("sklearn", same, needs(same, pickle_refs=frozenset())).status == OK
    older = sklearn("1.7.2")
    lr = needs(older, pickle_refs=frozenset({"LogisticRegression"}))
    assert verdict("sklearn", older, lr).status == WARNING
    assert verdict("sklearn", older, lr, proba=True).status == WARNING


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
    v = verdict("mlflow", info, needs(info, pickle_refs=frozenset({"cloudpickle"})))
    assert v.status == INCOMPATIBLE and "Python 3.11.7" in v.problems[0]
    assert "pickled by value" in v.problems[0]
    with_code = pyfunc(code=True)
    by_reference = verdict("mlflow", with_code, needs(with_code, pickle_refs=frozenset()))
    assert by_reference.status == OK, by_reference  # a class from a module loads anywhere
    unread = verdict("mlflow", info, needs(info))  # not read whole: unknown, not "by value"
    assert unread.status == WARNING and "not read whole" in unread.problems[0]


def private_loader(reqs: str = "mlflow==3.17.2", files: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    conf = {"loader_module": "acme_private.loader", "data": "data", "python_version": "3.11.7"}
    meta = {"flavors": {"python_function": conf}}
    return describe_model("s3://b/m", yaml.safe_dump(meta), ["MLmodel", "data", *files], reqs)


def test_a_pyfunc_loader_module_in_no_runtime_is_incompatible_naming_it() -> None:
    info = private_loader()
    v = verdict("mlflow", info, needs(info))
    assert v.status == INCOMPATIBLE, v
    assert any("acme_private.loader" in p for p in v.problems), v.problems
    assert not any("by value" in p for p in v.problems), v.problems  # no pickle said so
    own = verdict("pyfunc", info, needs(info))
    assert own.status == INCOMPATIBLE and "acme_private.loader" in own.problems[0]
    # In the model's requirements: the project's runtime installs it; MLServer still cannot.
    required = private_loader("mlflow==3.17.2\nacme-private==1.0")
    assert verdict("pyfunc", required, needs(required)).status == OK
    assert verdict("mlflow", required, needs(required)).status == INCOMPATIBLE
    # Shipped in code/ (code_paths): importable everywhere.
    shipped = private_loader(files=("code/acme_private/__init__.py", "code/acme_private/loader.py"))
    assert not any("acme_private" in p for p in verdict("mlflow", shipped, needs(shipped)).problems)
    assert verdict("pyfunc", shipped, needs(shipped)).status == OK


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


def test_pickle_references_are_read_from_the_opcodes() -> None:
    import pickle

    import cloudpickle
    from sklearn.tree import DecisionTreeClassifier

    data = b"\x80\x05\x95..\x8c\x1esklearn.linear_model._logistic\x94\x8c\x12LogisticRegression"
    assert pickle_references(data) == frozenset()  # a byte pattern, not a valid opcode stream
    from sklearn.linear_model import LogisticRegression

    for protocol in (2, 4, 5):  # GLOBAL, and STACK_GLOBAL with memoized strings
        lr = pickle.dumps(LogisticRegression(), protocol=protocol)
        assert pickle_references(lr) == frozenset({"LogisticRegression"})
    tree = DecisionTreeClassifier()
    tree.note = "cloudpickle LogisticRegression"  # type: ignore[attr-defined]  # mere data
    assert pickle_references(cloudpickle.dumps(tree)) == frozenset()

    class Local:  # defined in a function: cloudpickle stores it by value
        pass

    assert pickle_references(cloudpickle.dumps(Local())) == frozenset({"cloudpickle"})


def test_requirements_and_python_env_give_versions() -> None:
    info = savedmodel("2.19.1")
    got = describe_needs(info, "python: 3.11.9\nbuild_dependencies: [pip]\n")
    assert got.version("tensorflow") == "2.19.1" and got.version("python") == "3.11.9"
    assert got.requirements == ("tensorflow",)


def test_read_needs_reads_headers_without_loading(zoo: Path) -> None:
    from kserve_predictor.model.mlmodel import read_model

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
    # A pyfunc's python_model pickle is read too: RowSum comes from a module (by reference).
    location = resolve(str(zoo / "pyfunc"), S3Settings())
    assert read_needs(location, read_model(location)).pickle_refs == frozenset()


# --- asking for probabilities ------------------------------------------------------------------


@pytest.mark.parametrize("style", ["model", "legacy"])
def test_the_product_never_turns_predict_proba_on_and_reads_the_users_overlay(style: str) -> None:
    from kserve_predictor.engines import ENGINES
    from kserve_predictor.kserve import manifests
    from kserve_predictor.settings.serving import PREDICT_PROBA_ENV, asks_probabilities, parse

    def written(options):  # type: ignore[no-untyped-def]
        spec = manifests.ServiceSpec("iris", "ns", ENGINES["sklearn"], "s3://b/m/", style=style)
        spec = manifests.ServiceSpec(**{**spec.__dict__, "options": options})
        return manifests.inference_service(spec)

    plain = parse({})
    assert PREDICT_PROBA_ENV not in str(written(plain)) and not asks_probabilities(plain)
    field = "model" if style == "model" else "sklearn"
    overlay = {
        "spec": {"predictor": {field: {"env": [{"name": "PREDICT_PROBA", "value": "True"}]}}}
    }
    asked = parse({"overlay": yaml.safe_dump(overlay)})
    assert asks_probabilities(asked)
    env = written(asked)["spec"]["predictor"][field]["env"]
    assert {"name": "PREDICT_PROBA", "value": "True"} in env  # what the server reads
    off = {"spec": {"predictor": {field: {"env": [{"name": "PREDICT_PROBA", "value": "false"}]}}}}
    assert not asks_probabilities(parse({"overlay": yaml.safe_dump(off)}))


def test_detect_judges_the_quickstart_model_on_what_was_asked(zoo: Path) -> None:
    from kserve_predictor.choice.detect import detect

    location = resolve(str(zoo / "sklearn_pickle"), S3Settings())  # examples/train_iris.py's model
    default = detect(location, "sklearn").compatibility
    assert default is not None and default.status == WARNING, default
    asked = detect(location, "sklearn", predict_proba=True).compatibility
    assert asked is not None and asked.status == INCOMPATIBLE, asked
