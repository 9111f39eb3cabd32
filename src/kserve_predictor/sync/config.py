"""The entries ``sync`` keeps: which registry alias each InferenceService follows, and how.

```yaml
interval: 60            # seconds between two polls of every alias (the webhook's fallback)
entries:
  - model: iris         # the registered model
    alias: champion
    app: iris           # the InferenceService (and app) name
    namespace: models
    predictor: auto
    timeout: 600        # seconds a rollout may take before it counts as failed
    options: {min_replicas: 1}   # serving options, as the MLflow config keys spell them
    rollout: {policy: replace}   # or {policy: canary, percent: 20, promote_after: 60}
    rollback: true      # roll back when the new version fails (default true)
```

The same YAML can come from a ConfigMap mounted as a file (deploy/sync/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kserve_predictor.errors import UsageError
from kserve_predictor.naming import check_app_name
from kserve_predictor.settings.serving import ServingOptions, parse
from kserve_predictor.settings.table import default

POLICIES = ("replace", "canary")


@dataclass(frozen=True)
class Entry:
    """One InferenceService following one alias."""

    model: str
    alias: str
    app: str
    namespace: str
    predictor: str = "auto"
    timeout: float = default("timeout")
    options: ServingOptions = field(default_factory=ServingOptions)
    policy: str = "replace"
    canary_percent: int = 0
    """The new version's share while it is a canary (policy canary)."""
    promote_after: float = 0.0
    """Seconds the canary must have been Ready, its smoke test passed, before it is promoted."""
    rollback: bool = True

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.app}"


@dataclass(frozen=True)
class SyncConfig:
    entries: tuple[Entry, ...]
    interval: float = 60.0


def load(path: str | Path) -> SyncConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"cannot read the sync configuration {path}: {e}") from e
    return parse_config(data, str(path))


def parse_config(data: Any, where: str = "the sync configuration") -> SyncConfig:
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise UsageError(f"{where} must be a mapping with a list 'entries'")
    entries = tuple(
        _entry(item, f"{where}: entries[{i}]") for i, item in enumerate(data["entries"])
    )
    keys = [e.key for e in entries]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise UsageError(f"{where} names {', '.join(duplicates)} more than once")
    interval = _number(data.get("interval", 60), f"{where}: interval")
    return SyncConfig(entries, interval)


def _entry(item: Any, where: str) -> Entry:
    if not isinstance(item, dict):
        raise UsageError(f"{where} must be a mapping")
    known = {"model", "alias", "app", "namespace", "predictor", "timeout", "options", "rollout",
             "rollback"}  # fmt: skip
    unknown = sorted(set(item) - known)
    if unknown:
        raise UsageError(f"{where} has unknown keys {unknown}; known: {sorted(known)}")
    for required in ("model", "alias", "app", "namespace"):
        if not str(item.get(required) or "").strip():
            raise UsageError(f"{where} needs {required!r}")
    rollout = item.get("rollout") or {"policy": "replace"}
    policy = str(rollout.get("policy", "replace"))
    if policy not in POLICIES:
        raise UsageError(
            f"{where}: rollout policy {policy!r} is unknown; use {' or '.join(POLICIES)}"
        )
    options_given = {
        k: None if v is None else str(v) for k, v in (item.get("options") or {}).items()
    }
    percent = 0
    if policy == "canary":
        percent = int(_number(rollout.get("percent", 0), f"{where}: rollout.percent"))
        if not 1 <= percent <= 99:
            raise UsageError(f"{where}: rollout.percent must be from 1 to 99")
        options_given["canary_traffic_percent"] = str(percent)
    elif options_given.get("canary_traffic_percent"):
        raise UsageError(f"{where}: canary_traffic_percent belongs in rollout: {{policy: canary}}")
    options = parse(options_given, lambda name: f"{where}: options.{name}")
    return Entry(
        model=str(item["model"]).strip(),
        alias=str(item["alias"]).strip(),
        app=check_app_name(str(item["app"]).strip()),
        namespace=str(item["namespace"]).strip(),
        predictor=str(item.get("predictor") or "auto"),
        timeout=_number(item.get("timeout", default("timeout")), f"{where}: timeout"),
        options=options,
        policy=policy,
        canary_percent=percent,
        promote_after=float(rollout.get("promote_after", 0) or 0),
        rollback=bool(item.get("rollback", True)),
    )


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1
    if number <= 0:
        raise UsageError(f"{where}={value!r} is not a positive number")
    return number
