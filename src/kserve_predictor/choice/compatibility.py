"""The compatibility check: will the chosen runtime load this model and answer correctly?

The verdict's statuses and types are in verdict.py, the rules in rules.py; this module runs
them for a model on a runtime image, and judges the project's own runtime (which installs the
model's requirements, so only Python and the loader module matter).
"""

from __future__ import annotations

from kserve_predictor.choice.image_libraries import (
    RuntimeLibraries,
    lookup,
    with_tag,
)
from kserve_predictor.choice.needs import (
    ModelNeeds,
)
from kserve_predictor.choice.rules import RULES
from kserve_predictor.choice.rules_mlflow import unimportable_loader
from kserve_predictor.choice.runtime_selection import Selection
from kserve_predictor.choice.verdict import (
    INCOMPATIBLE,
    OK,
    WARNING,
    Context,
    Verdict,
    minor,
    parse_version,
    worst,
)
from kserve_predictor.model.mlmodel import ModelInfo

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
    trained = parse_version(needs.version("python"))
    problems: tuple[str, ...] = ()
    status = OK
    if trained and minor(trained) != IMAGE_PYTHON:
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
    status = worst(f.status for f in findings)
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
