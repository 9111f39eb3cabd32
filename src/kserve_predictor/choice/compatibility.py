"""The compatibility check: will the chosen runtime load this model and answer correctly?

Each rule below states the fact it rests on (measured on KServe's real server code with the
libraries its images ship; see data/runtime_libraries.yaml). A rule returns findings; the
verdict is the worst of them:

    ok            nothing known to go wrong
    adjusted      the product sets runtimeVersion to a tag that serves the model
    warning       loads and answers the call the server makes, but untested across these
                  versions, or only a non-default setting (named) would fail (proceeds with one
                  line)
    incompatible  the call the server will make fails or answers wrongly: the deployment stops
                  before any write

Every rule is judged on the call the stock server really makes (SERVER_CALLS below, from each
server's source); the product never writes a setting that changes that call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from kserve_predictor.choice.image_libraries import (
    RuntimeLibraries,
    known_tags,
    lookup,
    split_image,
    with_tag,
)
from kserve_predictor.choice.needs import (
    BY_VALUE,
    LOGISTIC_REGRESSION,
    PYTHON_MODEL_LOADER,
    ModelNeeds,
)
from kserve_predictor.choice.runtime_selection import Selection
from kserve_predictor.model.mlmodel import ONNX, PYFUNC, SKLEARN, XGBOOST, ModelInfo

OK, ADJUSTED, WARNING, INCOMPATIBLE = "ok", "adjusted", "warning", "incompatible"
_RANK = {OK: 0, ADJUSTED: 1, WARNING: 2, INCOMPATIBLE: 3}
SERVABLE = (OK, ADJUSTED)


@dataclass(frozen=True)
class Finding:
    status: str
    message: str
    runtime_version: str | None = None
    """For ``adjusted``: the runtimeVersion (image tag) that fixes it."""


@dataclass(frozen=True)
class Verdict:
    """The outcome for one engine on the runtime KServe will select."""

    status: str
    runtime: str | None
    image: str | None
    problems: tuple[str, ...] = ()
    runtime_version: str | None = None
    """The runtimeVersion to write (adjusted, explicit or the engine's default)."""
    source: str = "defaults"
    """Where the runtime came from: cluster, or defaults (KServe's release defaults)."""
    libraries: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "image": self.image,
            "status": self.status,
            "problems": list(self.problems),
            "runtime_version": self.runtime_version,
        }

    def summary(self) -> str:
        reasons = "; ".join(self.problems)
        return f"{self.status}" + (f": {reasons}" if reasons else "")


@dataclass(frozen=True)
class Context:
    """Everything a rule may look at."""

    engine: str
    info: ModelInfo
    needs: ModelNeeds
    image: str
    libraries: RuntimeLibraries
    explicit_version: bool
    """The user chose the runtime version: never adjust it."""
    predict_proba: bool = False
    """The user asked the runtime for probabilities (PREDICT_PROBA=true on the predictor, set
    through --overlay; the product never sets it)."""


Rule = Callable[[Context], list[Finding]]


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


def _v(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _minor(version: Version) -> tuple[int, int]:
    return version.major, version.minor


def _both(ctx: Context, name: str) -> tuple[Version, Version] | None:
    trained, served = _v(ctx.needs.version(name)), _v(ctx.libraries.version(name))
    return (trained, served) if trained and served else None


def _flavor(ctx: Context, flavor: str) -> bool:
    """Does the runtime load the model through this library (native engine or MLflow flavor)?"""
    return flavor in ctx.info.flavors and ctx.engine in (flavor, "mlflow")


# --- rules ---------------------------------------------------------------------------------


def xgboost_base_score(ctx: Context) -> list[Finding]:
    """XGBoost ≥ 3.1 stores base_score as a vector ("[1E0]"); 2.x reads it back as 0.5 without a
    word: regression off by exactly 0.5, binary:logistic by up to 0.027. Multi-class softmax is
    unaffected, 3.0.x models are fine."""
    versions = _both(ctx, "xgboost") if _flavor(ctx, XGBOOST) else None
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
    versions = _both(ctx, "scikit-learn") if _flavor(ctx, SKLEARN) else None
    if not versions or _minor(versions[0]) == _minor(versions[1]):
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


def sklearn_skops_on_mlflow2(ctx: Context) -> list[Finding]:
    """MLflow 2 cannot load skops-serialized sklearn models (skops came with MLflow 3)."""
    served = _v(ctx.libraries.version("mlflow"))
    if ctx.engine != "mlflow" or ctx.info.serialization != "skops" or not served:
        return []
    if served.major >= 3:
        return []
    return [
        Finding(
            INCOMPATIBLE,
            f"the model is skops-serialized and mlflow {served} in {ctx.image} cannot load it; "
            "log it with serialization_format='cloudpickle'",
        )
    ]


def numpy_generator(ctx: Context) -> list[Finding]:
    """numpy ≥ 2 pickles holding a numpy random generator (GradientBoosting*, MLP*, ...) fail on
    numpy 1.x ("... is not a known BitGenerator module"); others load."""
    versions = _both(ctx, "numpy")
    pickled = ctx.info.serialization in ("pickle", "cloudpickle") or ctx.info.format == PYFUNC
    if ctx.engine != "mlflow" or not versions or not pickled:
        return []
    trained, served = versions
    if trained.major >= 2 > served.major:
        return [
            Finding(
                WARNING,
                f"numpy {trained} pickle on numpy {served}: fails if the model holds a numpy "
                "random generator (GradientBoosting*, HistGradientBoosting*, MLP*)",
            )
        ]
    return []


def pyfunc_python(ctx: Context) -> list[Finding]:
    """A class or function pickled by value (cloudpickle's _make_skeleton_class, _make_function:
    code objects) under another Python minor fails to unpickle ("code expected at most 16
    arguments, got 18"); a class imported from a module (code_paths, a package) is pickled by
    reference and loads. Claimed only when the pickle's opcodes say so (model_needs)."""
    trained, served = _v(ctx.needs.version("python")), _v(ctx.libraries.version("python"))
    if ctx.engine != "mlflow" or not trained or not served or _minor(trained) == _minor(served):
        return []
    refs = ctx.needs.pickle_refs
    by_value = refs is not None and BY_VALUE in refs
    if ctx.info.format != PYFUNC:
        if not by_value:
            return []
        return [
            Finding(
                INCOMPATIBLE,
                f"the pickle holds classes pickled by value under Python {trained}, which "
                f"Python {served} in {ctx.image} cannot load; define them in a module passed "
                "as code_paths",
            )
        ]
    if loader_module(ctx.info) != PYTHON_MODEL_LOADER:
        return []  # its data is the loader's own format: nothing says it is a pickle
    if by_value:
        return [
            Finding(
                INCOMPATIBLE,
                f"the pyfunc's python_model is pickled by value under Python {trained}, which "
                f"Python {served} in {ctx.image} cannot load; log it with Python "
                f"{served.major}.{served.minor}, or move the class into a module passed as "
                "code_paths",
            )
        ]
    if refs is None:
        return [
            Finding(
                WARNING,
                f"pyfunc logged under Python {trained}, served by Python {served}: its "
                "python_model pickle was not read whole; it fails to load if it holds classes "
                "pickled by value",
            )
        ]
    return []


def loader_module(info: ModelInfo) -> str | None:
    """The python_function flavor's loader_module (mlflow.pyfunc.model for a python_model)."""
    module = info.flavors.get("python_function", {}).get("loader_module")
    return str(module) if module else None


def unimportable_loader(info: ModelInfo, packages: frozenset[str] | tuple[str, ...]) -> str | None:
    """A pyfunc's loader_module that is neither MLflow's, nor shipped in the model's code/
    (MLflow copies code_paths there, onto sys.path at load), nor from one of ``packages``
    (distribution names, matched by the module's top-level name); None when it can be imported."""
    module = loader_module(info)
    if info.format != PYFUNC or not module or module.split(".")[0] == "mlflow":
        return None
    top = module.split(".")[0]
    code = str(info.flavors.get("python_function", {}).get("code") or "code")
    if any(f.startswith(f"{code}/{top}/") or f == f"{code}/{top}.py" for f in info.files):
        return None
    if canonicalize_name(top) in {canonicalize_name(p) for p in packages}:
        return None
    return module


def pyfunc_loader_module(ctx: Context) -> list[Finding]:
    """MLServer's mlflow runtime calls mlflow.pyfunc.load_model, which imports the pyfunc's
    loader_module: a module in no package of the image and not in the model's code/ cannot be
    imported (ModuleNotFoundError), whatever its data holds."""
    if ctx.engine != "mlflow":
        return []
    module = unimportable_loader(ctx.info, ctx.libraries.packages)
    if module is None:
        return []
    return [
        Finding(
            INCOMPATIBLE,
            f"the pyfunc's loader_module {module} is in no package of {ctx.image} and not in "
            "the model's code/: the runtime cannot import it; pass it as code_paths when logging, "
            "or use --predictor pyfunc with its distribution in the model's requirements",
        )
    ]


def pyfunc_requirements(ctx: Context) -> list[Finding]:
    """MLServer never installs a model's requirements: a missing package is ModuleNotFoundError."""
    if ctx.engine != "mlflow" or ctx.info.format != PYFUNC or not ctx.libraries.packages:
        return []
    if ctx.libraries.source == "declared":
        return []
    missing = sorted(set(ctx.needs.requirements) - ctx.libraries.packages)
    if not missing:
        return []
    return [
        Finding(
            INCOMPATIBLE,
            f"the model needs {', '.join(missing)}, which {ctx.image} lacks and MLServer does not "
            "install; use an image that has them (--runtime-version, declared with "
            "--runtime-libraries)",
        )
    ]


def onnx_ir(ctx: Context) -> list[Finding]:
    """ONNX Runtime refuses models whose IR version is above its own maximum ("Unsupported model
    IR version: 10, max supported IR version: 9"); Triton tags ship different ONNX Runtimes."""
    ir, max_ir = ctx.needs.onnx_ir_version, _int(ctx.libraries.version("onnx-ir-max"))
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
            if (_int(libraries.version("onnx-ir-max")) or 0) >= ir:
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
    trained = _v(ctx.needs.version("tensorflow"))
    served = _v(ctx.libraries.version("tensorflow"))
    if trained is None or served is None:
        return []
    if ctx.explicit_version:
        if _minor(served) < _minor(trained):
            return [
                Finding(
                    WARNING,
                    f"SavedModel from TensorFlow {trained} on TF Serving {served}: "
                    "older than the model",
                )
            ]
        return []
    tags = [(tag, _v(lib.version("tensorflow"))) for tag, lib in known_tags(ctx.image)]
    same_minor = [tag for tag, v in tags if v and _minor(v) == _minor(trained)]
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
    versions = _both(ctx, "lightgbm") if _flavor(ctx, "lightgbm") else None
    if not versions or versions[0].major == versions[1].major:
        return []
    return [Finding(WARNING, f"lightgbm {versions[0]} model on lightgbm {versions[1]}: untested")]


def tensorflow_on_triton(ctx: Context) -> list[Finding]:
    """A SavedModel may use ops newer than the TensorFlow inside the Triton image."""
    versions = _both(ctx, "tensorflow")
    if ctx.engine != "triton" or ctx.info.format == ONNX or not versions:
        return []
    if _minor(versions[0]) <= _minor(versions[1]):
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


# The library MLflow's flavor loader imports, for each model format.
_FLAVOR_LIBRARY = {
    SKLEARN: "scikit-learn",
    XGBOOST: "xgboost",
    "lightgbm": "lightgbm",
    ONNX: "onnxruntime",
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
}


def mlflow_flavor_library(ctx: Context) -> list[Finding]:
    """MLServer loads the model through its MLflow flavor, which imports the flavor's library:
    an image without it fails with ModuleNotFoundError (it installs nothing)."""
    library = _FLAVOR_LIBRARY.get(ctx.info.format)
    if ctx.engine != "mlflow" or library is None or ctx.libraries.source == "declared":
        return []
    if not ctx.libraries.packages or library in ctx.libraries.packages:
        return []
    return [
        Finding(
            INCOMPATIBLE,
            f"{ctx.image} has no {library}, which MLflow's {ctx.info.format} flavor needs; use "
            "the predictor made for this format",
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


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


OWN_RUNTIME_ENGINE = "pyfunc"


def own_runtime_verdict(
    info: ModelInfo,
    needs: ModelNeeds,
    selection: Selection | None,
    runtime_version: str | None,
    source: str,
) -> Verdict:
    """kserve-predictor's own runtime installs the model's pinned requirements when it starts,
    so library skews do not apply; only Python does, because pickles and installed wheels are
    bound to the interpreter's minor version (the runtime refuses another at start), and a
    pyfunc's loader_module must come from code/ or from the requirements it installs."""
    from kserve_predictor.engines.own_runtime import IMAGE_PYTHON, INSTALL_COMMAND, NAME

    if selection is None:
        return Verdict(
            INCOMPATIBLE,
            None,
            None,
            (
                f"the {NAME} runtime is not installed in this cluster; install it with `{INSTALL_COMMAND}`",
            ),
            runtime_version,
        )
    served = ".".join(str(part) for part in IMAGE_PYTHON)
    trained = _v(needs.version("python"))
    problems: tuple[str, ...] = ()
    status = OK
    if trained and _minor(trained) != IMAGE_PYTHON:
        status = INCOMPATIBLE
        problems = (
            f"the model was logged with Python {trained} and {NAME} runs Python {served}; "
            f"log it with Python {served}",
        )
    module = unimportable_loader(info, ("mlflow", *needs.requirements))
    if module is not None:
        status = INCOMPATIBLE
        problems += (
            f"the pyfunc's loader_module {module} is not in the model's code/ nor in its "
            f"requirements: {NAME} cannot import it; pass it as code_paths when logging, or add "
            "its distribution to the model's requirements",
        )
    return Verdict(
        status,
        selection.runtime.name,
        selection.image,
        problems,
        runtime_version,
        selection.source,
        {"python": served},
    )


def check(
    engine: str,
    info: ModelInfo,
    needs: ModelNeeds,
    selection: Selection | None,
    runtime_version: str | None,
    explicit_version: bool,
    declared: RuntimeLibraries | None = None,
    source: str = "defaults",
    predict_proba: bool = False,
) -> Verdict:
    """The verdict for serving the model with ``engine`` on the selected runtime;
    ``predict_proba``: the user asked the runtime for probabilities (Context.predict_proba)."""
    if engine == OWN_RUNTIME_ENGINE:
        return own_runtime_verdict(info, needs, selection, runtime_version, source)
    if selection is None and source == "unknown":
        return Verdict(
            WARNING,
            None,
            None,
            (
                "the cluster serves no ServingRuntime API (KServe < 0.8): its runtime images and "
                "their libraries are unknown",
            ),
            runtime_version,
            source,
        )
    if selection is None:
        return Verdict(
            INCOMPATIBLE,
            None,
            None,
            (
                f"no ServingRuntime serves this model for predictor {engine!r}; "
                "install KServe's runtimes or choose another predictor",
            ),
            runtime_version,
        )
    image = selection.image
    if runtime_version:
        image = with_tag(selection.runtime.image, runtime_version)
    libraries = declared or lookup(image)
    common = (selection.runtime.name, image)
    if libraries is None:
        return Verdict(
            WARNING,
            *common,
            (
                f"image {image} is not in the runtime table: its libraries are unknown; declare "
                "them with --runtime-libraries 'scikit-learn==1.5.2,numpy==2.2.4' "
                "(FUSEML_RUNTIME_LIBRARIES)",
            ),
            runtime_version,
            selection.source,
        )
    ctx = Context(engine, info, needs, image, libraries, explicit_version, predict_proba)
    findings = [finding for rule in RULES for finding in rule(ctx)]
    status = max((f.status for f in findings), key=_RANK.__getitem__, default=OK)
    adjusted = next((f.runtime_version for f in findings if f.runtime_version), None)
    if adjusted:
        image = with_tag(selection.runtime.image, adjusted)
    return Verdict(
        status,
        selection.runtime.name,
        image,
        tuple(f.message for f in findings),
        adjusted or runtime_version,
        selection.source,
        dict(libraries.versions),
    )
