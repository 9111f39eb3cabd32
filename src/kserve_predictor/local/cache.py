"""The local cache: an engine's layout built on this machine, refreshed only where it changed.

The layout the local runtime loads is built here from the engine's plan, for S3 models and local
folders alike: the model's own location is only ever read (the KServe path writes its converted
copy next to the model; the local runtime never does).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kserve_predictor.engines import LayoutPlan
from kserve_predictor.model.urls import ModelLocation

_STATE = ".kserve-predictor-layout.json"


def home() -> Path:
    """Where local state lives: $KSERVE_PREDICTOR_HOME, else ~/.kserve-predictor."""
    return Path(os.environ.get("KSERVE_PREDICTOR_HOME") or Path.home() / ".kserve-predictor")


def cache_folder(url: str, engine: str, name: str) -> Path:
    """One folder per model, engine and served name (Triton's layout is named after it)."""
    digest = hashlib.sha256(f"{url}\0{engine}\0{name}".encode()).hexdigest()[:16]
    return home() / "cache" / digest / engine


def build(location: ModelLocation, plan: LayoutPlan, folder: Path) -> list[str]:
    """Make ``folder`` hold exactly the plan's files; returns those fetched or written.

    Copies are downloaded from the store (``Store.download``), generated files written; a file
    whose source (key, size, version tag) or content is what the last build recorded is kept.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state_file = folder.parent / (folder.name + _STATE)
    try:
        known: dict[str, Any] = json.loads(state_file.read_text())
    except (OSError, ValueError):
        known = {}
    objects = {o.key: o for o in location.listing()}
    wanted: dict[str, Any] = {}
    for relative, source in plan.copies.items():
        obj = objects[location.key(source)]
        wanted[relative] = {"key": obj.key, "size": obj.size, "etag": obj.etag}
    for relative, data in plan.generated.items():
        wanted[relative] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    changed = []
    for relative, entry in sorted(wanted.items()):
        target = folder / relative
        if (
            known.get(relative) == entry
            and target.is_file()
            and target.stat().st_size == entry["size"]
        ):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        if relative in plan.copies:
            location.store.download(objects[entry["key"]], partial)
        else:
            partial.write_bytes(plan.generated[relative])
        partial.replace(target)  # a file is whole or absent, never half-written
        changed.append(relative)
    for path in sorted(folder.rglob("*"), reverse=True):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    partial_state = state_file.with_name(state_file.name + ".partial")
    partial_state.write_text(json.dumps(wanted, indent=1, sort_keys=True))
    partial_state.replace(state_file)
    return changed
