"""KServe's serving options (canary, autoscaling, deployment mode, protocol, logger, placement,
overlay): one typed value, parsed once from CLI flags, FUSEML_<NAME> variables or MLflow
deployments config keys, and applied to the generated InferenceService.

Each option has one name: the config key ``name``, the variable ``FUSEML_<NAME>`` and the flag
``--<name with dashes>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class ServingOptions:
    """What the user asked of KServe beyond the model; all unset (None) by default, and an unset
    option leaves the InferenceService field to KServe's default."""

    canary_traffic_percent: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    scale_target: int | None = None
    scale_metric: str | None = None
    autoscaler_class: str | None = None
    deployment_mode: str | None = None
    protocol: str | None = None
    logger: str | None = None
    """Payload logging sink URL."""
    logger_mode: str | None = None
    request_timeout: int | None = None
    container_concurrency: int | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[dict[str, Any]] | None = None
    gpu: int | None = None
    overlay: dict[str, Any] | None = None
    """A JSON merge patch (RFC 7386) applied over the generated InferenceService."""


NAMES: tuple[str, ...] = tuple(f.name for f in fields(ServingOptions))


def parse(
    values: Mapping[str, str | None], spelling: Callable[[str], str] = lambda name: name
) -> ServingOptions:
    """Options from their text forms; ``spelling(name)`` is how the user wrote the name
    (``--min-replicas``, ``FUSEML_MIN_REPLICAS``, ``config key min_replicas``), for errors."""
    for name, value in values.items():
        if name not in NAMES and value not in (None, ""):
            raise UsageError(f"{spelling(name)} is not a serving option")
    if any(value not in (None, "") for value in values.values()):
        raise NotImplementedError("issue 13: parse and validate each option")
    return ServingOptions()
