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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from kserve_predictor.choice.image_libraries import RuntimeLibraries
from kserve_predictor.choice.needs import ModelNeeds
from kserve_predictor.model.mlmodel import ModelInfo

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


def parse_version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def minor(version: Version) -> tuple[int, int]:
    return version.major, version.minor


def both_versions(ctx: Context, name: str) -> tuple[Version, Version] | None:
    trained, served = (
        parse_version(ctx.needs.version(name)),
        parse_version(ctx.libraries.version(name)),
    )
    return (trained, served) if trained and served else None


def has_flavor(ctx: Context, flavor: str) -> bool:
    """Does the runtime load the model through this library (native engine or MLflow flavor)?"""
    return flavor in ctx.info.flavors and ctx.engine in (flavor, "mlflow")


def worst(statuses: Iterable[str]) -> str:
    """The worst of some statuses (OK when there are none)."""
    return max(statuses, key=_RANK.__getitem__, default=OK)


def as_int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
