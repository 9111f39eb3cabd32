"""What a model needs from the runtime that serves it, read from metadata and file headers only.

Sources: the MLmodel's library versions, ``requirements.txt`` pins, ``python_env.yaml``, the
``code/`` folder (MLflow ``code_paths``), and a few bytes of the model file itself, read by
ranged reads and never unpickled or executed: the ONNX IR version (field 1 at the start of the
protobuf), the XGBoost objective (in the last few KiB of its JSON/UBJ file), and the globals a
pickle imports (its GLOBAL/STACK_GLOBAL opcodes in its first PICKLE_HEAD_BYTES, read with
``pickletools.genops``, which decodes opcodes and executes nothing: a pickle names each class where
it first uses it, so the estimators of a small model all appear there).
"""

from __future__ import annotations

import pickletools
import re
from dataclasses import dataclass, field

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from kserve_predictor.engines.base import pinned_version
from kserve_predictor.engines.tensorflow import TENSORFLOW_PACKAGES
from kserve_predictor.model.mlmodel import MLMODEL_MAX_BYTES, ONNX, XGBOOST, ModelInfo
from kserve_predictor.model.urls import ModelLocation

PICKLE_HEAD_BYTES = 1024 * 1024
_XGBOOST_TAIL_BYTES = 8192
_XGBOOST_OBJECTIVE = re.compile(rb"(reg|binary|multi|rank|count|survival):[a-z_]+")
# What a pickle's imports say, as markers the rules read. "cloudpickle": the pickle rebuilds a
# class or function by value, through one of cloudpickle's rebuilders below (code objects bound
# to one Python minor, and cloudpickle needed to load). Other cloudpickle imports are not: e.g.
# _builtin_type rebuilds types such as typing's aliases for a by-reference class's type hints.
# "LogisticRegression": it holds a scikit-learn LogisticRegression.
BY_VALUE, LOGISTIC_REGRESSION = "cloudpickle", "LogisticRegression"
_BY_VALUE_REBUILDERS = frozenset(
    {
        "_make_skeleton_class",  # cloudpickle >= 1.5: a class by value
        "_make_skeleton_enum",
        "_class_setstate",
        "_make_function",  # cloudpickle >= 2: a function (or method) by value
        "_function_setstate",
        "_make_skel_func",  # cloudpickle < 2
        "_fill_function",
    }
)
PYTHON_MODEL_LOADER = "mlflow.pyfunc.model"


@dataclass(frozen=True)
class ModelNeeds:
    """The versions a model was trained with and the features of it that constrain runtimes."""

    versions: dict[str, str] = field(default_factory=dict)
    """Canonical distribution name (and python) → version the model was trained/logged with."""
    requirements: tuple[str, ...] = ()
    """Canonical names of the distributions requirements.txt asks for."""
    code_paths: bool = False
    """The model ships Python code (MLflow code_paths, the code/ folder)."""
    pickle_refs: frozenset[str] | None = None
    """Which markers (BY_VALUE, LOGISTIC_REGRESSION) the model's pickle imports say; None when it
    was not read to its end (larger than PICKLE_HEAD_BYTES, or not a pickle) and no marker was
    seen: then the rules say what they cannot know. For a pyfunc: its python_model pickle."""
    onnx_ir_version: int | None = None
    xgboost_objective: str | None = None

    def version(self, name: str) -> str | None:
        return self.versions.get(canonicalize_name(name))

    def annotations(self) -> dict[str, str]:
        """The trained library versions, for the InferenceService's annotations."""
        return dict(sorted(self.versions.items()))


def read_needs(location: ModelLocation, info: ModelInfo) -> ModelNeeds:
    """Read what the model needs from the store (metadata, headers and trailers only)."""
    sizes = {location.relative(o.key): o.size for o in location.listing()}
    python_env = _read_text(location, "python_env.yaml") if "python_env.yaml" in sizes else ""
    needs = describe_needs(info, python_env)
    path = info.model_path
    size = sizes.get(path)
    onnx_ir = xgb_objective = None
    pickle_refs = None
    if size is not None:
        if info.format == ONNX:
            onnx_ir = onnx_ir_version(location.read_range(path, 0, 16))
        elif info.format == XGBOOST:
            start = max(size - _XGBOOST_TAIL_BYTES, 0)
            xgb_objective = xgboost_objective(location.read_range(path, start, size - start))
        elif info.serialization in ("pickle", "cloudpickle") or _python_model(info):
            head = location.read_range(path, 0, min(size, PICKLE_HEAD_BYTES))
            found, complete = pickle_imports(head)
            markers = markers_of(found)
            pickle_refs = markers if markers or complete else None
    return ModelNeeds(
        needs.versions,
        needs.requirements,
        needs.code_paths,
        pickle_refs,
        onnx_ir,
        xgb_objective,
    )


def describe_needs(info: ModelInfo, python_env: str = "") -> ModelNeeds:
    """The needs that follow from MLmodel, requirements.txt and python_env.yaml (pure)."""
    versions: dict[str, str] = {canonicalize_name(k): v for k, v in info.library_versions.items()}
    names = []
    for line in info.requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        name = canonicalize_name(requirement.name)
        names.append(name)
        pinned = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
        if pinned and name not in versions:
            versions[name] = pinned[0]
    tensorflow = pinned_version(info.requirements, TENSORFLOW_PACKAGES)
    if tensorflow:
        versions["tensorflow"] = tensorflow
    try:
        env = yaml.safe_load(python_env) if python_env else None
    except yaml.YAMLError:
        env = None
    if isinstance(env, dict) and env.get("python"):
        versions["python"] = str(env["python"])
    pyfunc = info.flavors.get("python_function", {})
    code = bool(pyfunc.get("code")) or any(f.startswith("code/") for f in info.files)
    return ModelNeeds(versions, tuple(names), code)


def onnx_ir_version(head: bytes) -> int | None:
    """ModelProto field 1 (ir_version, a varint): tag byte 0x08, then the varint."""
    if not head or head[0] != 0x08:
        return None
    value, shift = 0, 0
    for byte in head[1:11]:
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
    return None


def xgboost_objective(tail: bytes) -> str | None:
    """The learner's objective name, which XGBoost writes near the end of JSON and UBJ files."""
    at = tail.rfind(b"objective")
    found = _XGBOOST_OBJECTIVE.search(tail, at if at >= 0 else 0)
    return found.group(0).decode() if found else None


def _python_model(info: ModelInfo) -> bool:
    """A pyfunc whose model file is the pickled python_model (mlflow.pyfunc.save_model with
    python_model=...); any other loader_module reads data this check cannot interpret."""
    conf = info.flavors.get("python_function", {})
    return conf.get("loader_module") == PYTHON_MODEL_LOADER and bool(conf.get("python_model"))


def pickle_imports(data: bytes) -> tuple[frozenset[tuple[str, str]], bool]:
    """The (module, name) globals a pickle imports, read from its opcodes without executing
    anything; and whether the stream was read to its STOP opcode (False for a truncated head or
    bytes that are not a pickle). STACK_GLOBAL takes the two strings pushed just before it
    (pickle's save_global writes them, or memo gets of them, right before the opcode)."""
    found: set[tuple[str, str]] = set()
    recent: list[object] = [None, None]  # the last two values pushed (strings, else None)
    memo: dict[int, object] = {}
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            pushed: object = None
            if name in ("GLOBAL", "INST") and isinstance(arg, str):
                module, _, attr = arg.partition(" ")
                found.add((module, attr))
            elif name == "STACK_GLOBAL":
                if isinstance(recent[0], str) and isinstance(recent[1], str):
                    found.add((recent[0], recent[1]))
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1]
                continue  # stores the top, pushes nothing
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(str(arg))] = recent[-1]
                continue
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                pushed = memo.get(int(str(arg)))
            elif name == "STOP":
                return frozenset(found), True
            elif "UNICODE" in name and isinstance(arg, str):
                pushed = arg
            recent = [recent[-1], pushed]
    except (ValueError, KeyError, IndexError, EOFError):  # truncated, or not a pickle
        pass
    return frozenset(found), False


def markers_of(imports: frozenset[tuple[str, str]]) -> frozenset[str]:
    """The markers the rules read, from a pickle's imports."""
    markers = set()
    for module, name in imports:
        cloudpickle = module == "cloudpickle" or module.startswith("cloudpickle.")
        if cloudpickle and name in _BY_VALUE_REBUILDERS:
            markers.add(BY_VALUE)
        if name == LOGISTIC_REGRESSION and module.startswith("sklearn."):
            markers.add(LOGISTIC_REGRESSION)
    return frozenset(markers)


def pickle_references(data: bytes) -> frozenset[str]:
    """The markers a pickle's imports give (see pickle_imports; nothing is executed)."""
    return markers_of(pickle_imports(data)[0])


def _read_text(location: ModelLocation, name: str) -> str:
    data = location.read(name, MLMODEL_MAX_BYTES) or b""
    return data.decode("utf-8", "replace")
