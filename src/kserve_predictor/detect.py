"""Detection: from a model URL to what the model is and how KServe serves it (no writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engines import AUTO, Engine, accepting_engines, choose_engine
from .engines.base import IMAGE_TAG
from .errors import PredictorMismatchError, UsageError
from .mlmodel import ModelInfo, read_model
from .modelurl import ModelLocation


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
    location: ModelLocation, predictor: str = "auto", runtime_version: str | None = None
) -> Detection:
    """Read the model's metadata and choose (or check) its engine; writes nothing.

    An explicit predictor that cannot serve the model raises PredictorMismatchError; with
    ``auto`` the problem is reported in the Detection instead, so ``detect`` can still describe
    the model.
    """
    explicit_version = check_runtime_version(runtime_version)
    info = read_model(location)
    try:
        engine = choose_engine(info, predictor)
    except PredictorMismatchError as e:
        if (predictor or AUTO).strip().lower() != AUTO:
            raise
        return Detection(location, info, None, explicit_version, problem=str(e))
    return Detection(
        location, info, engine, explicit_version or engine.default_runtime_version(info)
    )
