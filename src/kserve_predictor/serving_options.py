"""KServe's serving options (canary, autoscaling, deployment mode, protocol, logger, placement,
overlay): one typed value, parsed once from CLI flags, FUSEML_<NAME> variables or MLflow
deployments config keys, and applied to the generated InferenceService.

Each option has one name: the config key ``name``, the variable ``FUSEML_<NAME>`` and the flag
``--<name with dashes>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import UsageError

NAMES: tuple[str, ...] = ()
"""Every option's name (issue 13 fills this in)."""


@dataclass(frozen=True)
class ServingOptions:
    """What the user asked of KServe beyond the model; all unset by default."""


def parse(
    values: Mapping[str, str | None], spelling: Callable[[str], str] = lambda name: name
) -> ServingOptions:
    """Options from their text forms; ``spelling(name)`` is how the user wrote the name
    (``--min-replicas``, ``FUSEML_MIN_REPLICAS``, ``config key min_replicas``), for errors."""
    for name, value in values.items():
        if name not in NAMES and value not in (None, ""):
            raise UsageError(f"{spelling(name)} is not a serving option")
    return ServingOptions()
