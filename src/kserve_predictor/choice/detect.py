"""Detection: from a model URL to what the model is and how KServe serves it (no writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kserve_predictor.choice.compatibility import check
from kserve_predictor.choice.image_libraries import parse_declared
from kserve_predictor.choice.needs import ModelNeeds, read_needs
from kserve_predictor.choice.runtime_selection import ServingRuntime, default_runtimes, select
from kserve_predictor.choice.verdict import SERVABLE, WARNING, Verdict
from kserve_predictor.engines import (
    AUTO,
    AUTO_ENGINE,
    ENGINES,
    Engine,
    accepting_engines,
    choose_engine,
)
from kserve_predictor.engines.base import IMAGE_TAG
from kserve_predictor.errors import PredictorMismatchError, UsageError
from kserve_predictor.model.mlmodel import ModelInfo, read_model
from kserve_predictor.model.urls import ModelLocation


@dataclass(frozen=True)
class Detection:
    """A model, the engine chosen for it and the runtime version to ask for."""

    location: ModelLocation
    info: ModelInfo
    engine: Engine | None
    """The engine chosen; None when ``auto`` found none that serves the model as logged."""
    runtime_version: str | None
    problem: str | None = None
    """Why no engine was chosen, with the fix."""
    compatibility: Verdict | None = None
    """Will the runtime KServe selects load the model and answer correctly?"""
    needs: ModelNeeds | None = None
    choice: str | None = None
    """How ``auto`` chose among several engines, when it had to."""

    def require_engine(self) -> Engine:
        """The chosen engine, or the error explaining why there is none."""
        if self.engine is None:
            raise PredictorMismatchError(self.problem or "no engine serves this model")
        return self.engine

    def as_dict(self) -> dict[str, Any]:
        info = self.info
        return {
            "url": info.url,
            "format": info.format,
            "engine": self.engine.name if self.engine else None,
            "engines": accepting_engines(info),
            "problem": self.problem,
            "protocol": self.engine.protocol if self.engine else None,
            "runtime": self.engine.runtime if self.engine else None,
            "runtime_version": self.runtime_version,
            "flavors": sorted(info.flavors),
            "model_path": info.model_path,
            "serialization": info.serialization,
            "files": list(info.model_files()),
            "library_versions": info.library_versions,
            "signature": {
                "inputs": [_spec(s) for s in info.inputs],
                "outputs": [_spec(s) for s in info.outputs],
            },
            "input_example": info.input_example,
            "compatibility": self.compatibility.as_dict() if self.compatibility else None,
            "runtime_source": self.compatibility.source if self.compatibility else None,
            "choice": self.choice,
        }


def _spec(spec: Any) -> dict[str, Any]:
    return {
        "name": spec.name,
        "dtype": spec.dtype,
        "shape": list(spec.shape) if spec.shape else None,
    }


def check_runtime_version(value: str | None) -> str | None:
    """An explicit runtime version must be usable as a container image tag."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not IMAGE_TAG.match(value):
        raise UsageError(
            f"runtime version {value!r} cannot be an image tag; use letters, digits, '.', '_' and '-' "
            "(e.g. 2.14.1 or 23.05-py3)"
        )
    return value


def detect(
    location: ModelLocation,
    predictor: str = "auto",
    runtime_version: str | None = None,
    runtimes: list[ServingRuntime] | None = None,
    runtime_source: str = "defaults",
    runtime_libraries: str | None = None,
    predict_proba: bool = False,
) -> Detection:
    """Read the model's metadata, choose (or check) its engine and check it against the runtime
    KServe will select from ``runtimes`` (default: KServe's release defaults); writes nothing.

    An explicit predictor that cannot serve the model raises PredictorMismatchError; with
    ``auto`` the problem is reported in the Detection instead, so ``detect`` can still describe
    the model. ``auto`` prefers, among the engines that accept the model, the first whose
    verdict is ok or adjusted. ``predict_proba``: the user asked the runtime for probabilities
    (PREDICT_PROBA=true through --overlay), which the verdicts then judge.
    """
    explicit_version = check_runtime_version(runtime_version)
    info = read_model(location)
    auto = (predictor or AUTO).strip().lower() == AUTO
    mismatch = None
    try:
        engine: Engine | None = choose_engine(info, predictor)
    except PredictorMismatchError as e:
        if not auto:
            raise
        engine, mismatch = None, str(e)
    needs = read_needs(location, info)
    known = list(default_runtimes()) if runtimes is None else runtimes

    def verdict_for(candidate: Engine) -> Verdict:
        selection = select(
            known,
            candidate.model_format,
            candidate.protocol,
            explicit_version,
            explicit=candidate.explicit_runtime,
            source=runtime_source,
        )
        image = selection.image if selection else ""
        declared = parse_declared(runtime_libraries, image, "--runtime-libraries")
        return check(
            candidate.name,
            info,
            needs,
            selection,
            explicit_version,
            bool(explicit_version),
            declared,
            runtime_source,
            predict_proba,
        )

    if engine is None:  # auto, and the default engine cannot take the model as logged
        found = _first_servable(info, verdict_for)
        if found is None:
            return Detection(
                location, info, None, explicit_version, problem=_with_own_runtime(mismatch)
            )
        engine, verdict = found
        because = f"auto chose {engine.name} ({verdict.runtime}, {verdict.status}): {mismatch}"
        version = explicit_version or verdict.runtime_version
        return Detection(location, info, engine, version, None, verdict, needs, because)
    verdict = verdict_for(engine)
    choice: str | None = None
    # An explicit runtime version is a tag of the default engine's runtime: no switching then.
    if auto and not explicit_version and verdict.status not in SERVABLE:
        engine, verdict, choice = _prefer_servable(info, engine, verdict, verdict_for)
    version = explicit_version or verdict.runtime_version
    return Detection(location, info, engine, version, None, verdict, needs, choice)


def _first_servable(info: ModelInfo, verdict_for: Any) -> tuple[Engine, Verdict] | None:
    """The first engine accepting the model whose verdict is ok or adjusted."""
    for name in accepting_engines(info):
        verdict = verdict_for(ENGINES[name])
        if verdict.status in SERVABLE:
            return ENGINES[name], verdict
    return None


def _with_own_runtime(problem: str | None) -> str:
    from kserve_predictor.engines.own_runtime import INSTALL_COMMAND

    return (
        f"{problem or 'no engine serves this model'}; or install kserve-predictor's own "
        f"runtime, which serves it as logged (`{INSTALL_COMMAND}`; auto then picks it)"
    )


def _prefer_servable(
    info: ModelInfo, first: Engine, first_verdict: Verdict, verdict_for: Any
) -> tuple[Engine, Verdict, str | None]:
    """The first accepting engine whose verdict is ok/adjusted (else one with a warning), and
    why it was chosen over the default one."""
    others = [ENGINES[n] for n in accepting_engines(info) if n != AUTO_ENGINE[info.format]]
    warned: tuple[Engine, Verdict] | None = None
    for candidate in others:
        verdict = verdict_for(candidate)
        if verdict.status in SERVABLE:
            return candidate, verdict, _because(first, first_verdict, candidate, verdict)
        if verdict.status == WARNING and warned is None:
            warned = (candidate, verdict)
    if warned is not None and first_verdict.status != WARNING:
        return warned[0], warned[1], _because(first, first_verdict, *warned)
    return first, first_verdict, None


def _because(first: Engine, first_verdict: Verdict, chosen: Engine, verdict: Verdict) -> str:
    return (
        f"auto chose {chosen.name} ({verdict.runtime}, {verdict.status}) over {first.name} "
        f"({first_verdict.runtime}, {first_verdict.status}: {'; '.join(first_verdict.problems)})"
    )
