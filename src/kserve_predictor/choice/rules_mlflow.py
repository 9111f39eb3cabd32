"""The compatibility rules for MLServer's MLflow runtime (engine ``mlflow``), which loads the
model with its own MLflow and the libraries of its image: Python, the pyfunc's loader module and
requirements, the flavor's library, skops and numpy's pickled generators."""

from __future__ import annotations

from packaging.utils import canonicalize_name

from kserve_predictor.choice.needs import (
    BY_VALUE,
    PYTHON_MODEL_LOADER,
)
from kserve_predictor.choice.verdict import (
    INCOMPATIBLE,
    WARNING,
    Context,
    Finding,
    both_versions,
    minor,
    parse_version,
)
from kserve_predictor.model.mlmodel import ONNX, PYFUNC, SKLEARN, XGBOOST, ModelInfo


def sklearn_skops_on_mlflow2(ctx: Context) -> list[Finding]:
    """MLflow 2 cannot load skops-serialized sklearn models (skops came with MLflow 3)."""
    served = parse_version(ctx.libraries.version("mlflow"))
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
    versions = both_versions(ctx, "numpy")
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
    reference and loads. Claimed only when the pickle's opcodes say so (choice/needs.py)."""
    trained, served = (
        parse_version(ctx.needs.version("python")),
        parse_version(ctx.libraries.version("python")),
    )
    if ctx.engine != "mlflow" or not trained or not served or minor(trained) == minor(served):
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
