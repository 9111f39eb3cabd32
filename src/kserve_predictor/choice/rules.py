"""The compatibility rules: one function per fact, each judged on the call the stock server
really makes (SERVER_CALLS, from each server's source). A rule returns findings; ``check``
(compatibility.py) takes the worst."""

from __future__ import annotations

from packaging.version import Version

from kserve_predictor.choice.image_libraries import (
    known_tags,
    split_image,
)
from kserve_predictor.choice.needs import (
    BY_VALUE,
    LOGISTIC_REGRESSION,
)
from kserve_predictor.choice.rules_mlflow import (
    mlflow_flavor_library,
    numpy_generator,
    pyfunc_loader_module,
    pyfunc_python,
    pyfunc_requirements,
    sklearn_skops_on_mlflow2,
)
from kserve_predictor.choice.verdict import (
    ADJUSTED,
    INCOMPATIBLE,
    WARNING,
    Context,
    Finding,
    Rule,
    as_int,
    both_versions,
    has_flavor,
    minor,
    parse_version,
)
from kserve_predictor.model.mlmodel import ONNX, SKLEARN, XGBOOST

# What each stock server calls on the model, and what changes the call (read from each server's
# source; KServe's model.py files are identical from v0.16.0 to v0.20.0 and differ from
# v0.14/v0.15 only in the Storage import and, for xgbserver, reading the file into a bytearray).
# docs/operations.md lists the same per server.
SERVER_CALLS: dict[str, str] = {
    # kserve/kserve python/sklearnserver/sklearnserver/model.py (SKLearnModel.predict):
    # joblib.load of the one *.joblib|*.pkl|*.pickle file, then model.predict(instances), or
    # model.predict_proba(instances) when the container's PREDICT_PROBA is "true" (default "false")
    # and the model has predict_proba. predictiveserver (v0.19+) wraps the same SKLearnModel.
    "sklearn": "predict; predict_proba when the predictor's environment sets PREDICT_PROBA=true",
    # python/xgbserver/xgbserver/model.py: xgb.Booster(model_file=...).predict(DMatrix(instances));
    # no other call, no setting.
    "xgboost": "Booster.predict on a DMatrix",
    # python/lgbserver/lgbserver/model.py: lightgbm.Booster(model_file=...).predict(instances).
    "lightgbm": "Booster.predict",
    # SeldonIO/MLServer runtimes/mlflow/mlserver_mlflow/runtime.py (1.5.0 … 1.7.1):
    # mlflow.pyfunc.load_model(uri).predict(data[, params]); the pyfunc calls the method its
    # MLmodel names in python_function.predict_fn (mlflow.pyfunc.load_model: default "predict";
    # mlflow.sklearn.log_model(pyfunc_predict_fn=...) sets it), both for /v2/.../infer and the
    # /invocations handler.
    "mlflow": "the pyfunc's predict, i.e. the method MLmodel's python_function.predict_fn names",
    # Triton (ONNX Runtime / TensorFlow backends) and TF Serving run the graph: every output, or
    # the serving signature a request names; no model method to choose.
    "triton": "the ONNX/SavedModel graph, all outputs",
    "tensorflow": "the SavedModel's serving_default signature (or the one a request names)",
}


# --- rules ---------------------------------------------------------------------------------


def xgboost_base_score(ctx: Context) -> list[Finding]:
    """XGBoost ≥ 3.1 stores base_score as a vector ("[1E0]"); 2.x reads it back as 0.5 without a
    word: regression off by exactly 0.5, binary:logistic by up to 0.027. Multi-class softmax is
    unaffected, 3.0.x models are fine."""
    versions = both_versions(ctx, "xgboost") if has_flavor(ctx, XGBOOST) else None
    if not versions or versions[0] < Version("3.1") or versions[1] >= Version("3.1"):
        return []
    trained, served = versions
    objective = ctx.needs.xgboost_objective
    if objective and objective.startswith("multi:soft"):
        return [
            Finding(
                WARNING,
                f"xgboost {trained} model on xgboost {served}: loads, untested across versions "
                f"({objective} is not affected by the base_score change)",
            )
        ]
    return [
        Finding(
            INCOMPATIBLE,
            f"xgboost {trained} model ({objective or 'objective unknown'}) on xgboost {served} "
            "answers wrong numbers (base_score lost); retrain and log with xgboost<3.1, or use a "
            "runtime with xgboost>=3.1 (--runtime-version / --runtime-libraries)",
        )
    ]


def _sklearn_call(ctx: Context) -> tuple[str, str]:
    """The method the runtime calls on a scikit-learn model, and the setting that would make it
    call predict_proba instead (see SERVER_CALLS)."""
    if ctx.engine == "mlflow":
        predict_fn = ctx.info.flavors.get("python_function", {}).get("predict_fn") or "predict"
        return str(predict_fn), "the model logged with pyfunc_predict_fn='predict_proba'"
    call = "predict_proba" if ctx.predict_proba else "predict"
    return call, "PREDICT_PROBA=true in the predictor's environment"


def sklearn_versions(ctx: Context) -> list[Finding]:
    """scikit-learn does not support unpickling across versions: every cross-version load logs
    InconsistentVersionWarning. A ≥ 1.8 LogisticRegression (alone or last in a Pipeline) on an
    older scikit-learn answers predict correctly, but predict_proba raises AttributeError (no
    attribute 'multi_class'): incompatible only where the server calls predict_proba."""
    versions = both_versions(ctx, "scikit-learn") if has_flavor(ctx, SKLEARN) else None
    if not versions or minor(versions[0]) == minor(versions[1]):
        return []
    trained, served = versions
    refs = ctx.needs.pickle_refs
    if (
        trained >= Version("1.8")
        and served < Version("1.8")
        and (refs is None or LOGISTIC_REGRESSION in refs)
    ):
        what = "a LogisticRegression" if refs is not None else "possibly a LogisticRegression"
        call, setting = _sklearn_call(ctx)
        if call == "predict_proba":
            return [
                Finding(
                    INCOMPATIBLE,
                    f"scikit-learn {trained} model ({what}) on scikit-learn {served}: the server "
                    f"calls predict_proba ({setting}), which fails (no attribute 'multi_class'); "
                    f"log it with scikit-learn=={served}, or declare a runtime with "
                    f"scikit-learn~={trained.major}.{trained.minor} (--runtime-libraries)",
                )
            ]
        return [
            Finding(
                WARNING,
                f"scikit-learn {trained} model ({what}) on scikit-learn {served}: the server calls "
                f"{call}, which answers correctly, but predict_proba fails, so {setting} would "
                "break every request; unpickling across versions is unsupported "
                "(InconsistentVersionWarning)",
            )
        ]
    return [
        Finding(
            WARNING,
            f"scikit-learn {trained} model on scikit-learn {served}: unpickling across versions "
            "is unsupported (InconsistentVersionWarning)",
        )
    ]


def sklearn_custom_code(ctx: Context) -> list[Finding]:
    """sklearnserver keeps only the model file and has no cloudpickle: code passed as MLflow
    code_paths is lost (No module named ...), and by-value cloudpickle objects cannot load."""
    if ctx.engine != "sklearn":
        return []
    found = []
    if ctx.needs.code_paths:
        found.append(
            Finding(
                INCOMPATIBLE,
                "the model's code_paths (code/) do not reach the sklearn runtime, which loads "
                "only the model file; use --predictor mlflow, or package the code into the image",
            )
        )
    refs = ctx.needs.pickle_refs or frozenset()
    if BY_VALUE in refs and "cloudpickle" not in ctx.libraries.packages:
        found.append(
            Finding(
                INCOMPATIBLE,
                f"the pickle holds cloudpickle by-value objects and {ctx.image} has no "
                "cloudpickle; define custom classes in a module installed in the runtime image",
            )
        )
    return found


def onnx_ir(ctx: Context) -> list[Finding]:
    """ONNX Runtime refuses models whose IR version is above its own maximum ("Unsupported model
    IR version: 10, max supported IR version: 9"); Triton tags ship different ONNX Runtimes."""
    ir, max_ir = ctx.needs.onnx_ir_version, as_int(ctx.libraries.version("onnx-ir-max"))
    if ctx.engine != "triton" or ctx.info.format != ONNX or ir is None or max_ir is None:
        return []
    if ir <= max_ir:
        return []
    problem = (
        f"ONNX IR version {ir} is above {max_ir}, the most that onnxruntime "
        f"{ctx.libraries.version('onnxruntime')} in {ctx.image} reads"
    )
    if not ctx.explicit_version:
        for tag, libraries in known_tags(ctx.image):
            if (as_int(libraries.version("onnx-ir-max")) or 0) >= ir:
                return [Finding(ADJUSTED, f"{problem}: runtimeVersion {tag}", tag)]
    return [
        Finding(
            INCOMPATIBLE,
            f"{problem}; re-export it with a lower IR version (onnx.helper.make_model(..., "
            f"ir_version={max_ir})) or choose a Triton tag that reads it (--runtime-version)",
        )
    ]


def tensorflow_serving_tag(ctx: Context) -> list[Finding]:
    """TF Serving images are tagged with the TensorFlow they serve, but not every TF release has a
    tag; the default 2.6.2 predates Keras 3 and most SavedModels from TF ≥ 2.16."""
    if ctx.engine != "tensorflow":
        return []
    trained = parse_version(ctx.needs.version("tensorflow"))
    served = parse_version(ctx.libraries.version("tensorflow"))
    if trained is None or served is None:
        return []
    if ctx.explicit_version:
        if minor(served) < minor(trained):
            return [
                Finding(
                    WARNING,
                    f"SavedModel from TensorFlow {trained} on TF Serving {served}: "
                    "older than the model",
                )
            ]
        return []
    tags = [(tag, parse_version(lib.version("tensorflow"))) for tag, lib in known_tags(ctx.image)]
    same_minor = [tag for tag, v in tags if v and minor(v) == minor(trained)]
    if same_minor:
        if split_image(ctx.image)[1] == same_minor[-1]:
            return []
        return [
            Finding(
                ADJUSTED,
                f"SavedModel from TensorFlow {trained}: TF Serving tag {same_minor[-1]}",
                same_minor[-1],
            )
        ]
    # A tag the table does not know may still exist (newer releases): ask for the model's own
    # TensorFlow version, as TF Serving tags are named, and say it is unverified.
    return [
        Finding(
            WARNING,
            f"no TF Serving tag is known for TensorFlow {trained.major}.{trained.minor}: asking for "
            f"{trained}, which may not exist; pass an existing tag with --runtime-version",
            str(trained),
        )
    ]


def lightgbm_major(ctx: Context) -> list[Finding]:
    """LightGBM's text model format is stable within a major version (4.7 → 4.6 and 4.3 load)."""
    versions = both_versions(ctx, "lightgbm") if has_flavor(ctx, "lightgbm") else None
    if not versions or versions[0].major == versions[1].major:
        return []
    return [Finding(WARNING, f"lightgbm {versions[0]} model on lightgbm {versions[1]}: untested")]


def tensorflow_on_triton(ctx: Context) -> list[Finding]:
    """A SavedModel may use ops newer than the TensorFlow inside the Triton image."""
    versions = both_versions(ctx, "tensorflow")
    if ctx.engine != "triton" or ctx.info.format == ONNX or not versions:
        return []
    if minor(versions[0]) <= minor(versions[1]):
        return []
    return [
        Finding(
            WARNING,
            f"SavedModel from TensorFlow {versions[0]} on Triton's TensorFlow {versions[1]}: "
            "untested",
        )
    ]


def probabilities_elsewhere(ctx: Context) -> list[Finding]:
    """PREDICT_PROBA is kserve-sklearnserver's switch alone: another runtime ignores it and
    answers what it always calls (SERVER_CALLS), not the probabilities the user asked for."""
    if not ctx.predict_proba or ctx.engine == "sklearn":
        return []
    return [
        Finding(
            INCOMPATIBLE,
            f"PREDICT_PROBA=true (--overlay) asks for probabilities, which only "
            f"kserve-sklearnserver reads; {ctx.image} ignores it and answers "
            f"{SERVER_CALLS.get(ctx.engine, 'what its server calls')}",
        )
    ]


RULES: tuple[Rule, ...] = (
    probabilities_elsewhere,
    mlflow_flavor_library,
    xgboost_base_score,
    sklearn_versions,
    sklearn_custom_code,
    sklearn_skops_on_mlflow2,
    numpy_generator,
    pyfunc_loader_module,
    pyfunc_python,
    pyfunc_requirements,
    onnx_ir,
    tensorflow_serving_tag,
    tensorflow_on_triton,
    lightgbm_major,
)
