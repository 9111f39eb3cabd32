"""A local copy of a converted layout that lives in S3, refreshed only where it changed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..store import Store

_STATE = ".kserve-predictor-sync.json"


def home() -> Path:
    """Where local state lives: $KSERVE_PREDICTOR_HOME, else ~/.kserve-predictor."""
    return Path(os.environ.get("KSERVE_PREDICTOR_HOME") or Path.home() / ".kserve-predictor")


def cache_folder(url: str, engine: str) -> Path:
    return home() / "cache" / hashlib.sha256(url.encode()).hexdigest()[:16] / engine


def sync(store: Store, prefix: str, folder: Path) -> list[str]:
    """Make ``folder`` mirror the objects below ``prefix``; returns the files fetched."""
    folder.mkdir(parents=True, exist_ok=True)
    state_file = folder.parent / (folder.name + _STATE)
    try:
        known: dict[str, str] = json.loads(state_file.read_text())
    except (OSError, ValueError):
        known = {}
    wanted = {o.key[len(prefix) :]: o for o in store.list_objects(prefix)}
    fetched = []
    for relative, obj in sorted(wanted.items()):
        target = folder / relative
        if (
            known.get(relative) == obj.etag
            and target.is_file()
            and target.stat().st_size == obj.size
        ):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        store.download(obj, target)
        fetched.append(relative)
    for path in sorted(folder.rglob("*"), reverse=True):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    state_file.write_text(json.dumps({k: o.etag for k, o in wanted.items()}))
    return fetched
