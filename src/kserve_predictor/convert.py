"""Execute an engine's layout plan against the store: idempotent, server-side, resumable.

The converted layout goes to ``<model>/kserve/<engine>/``. Beside it, ``<model>/kserve/.<engine>.json``
records what each converted file was made from (source key, size, ETag) and what it is now.
The record is removed before the first change and written after the last one, so a run that
died midway never leaves a layout that looks complete, and a run over an unchanged model
copies nothing. It lives outside the served folder because runtimes pick model files by
extension (xgbserver takes any *.json) and must see the layout alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from .engines import Engine
from .mlmodel import CONVERTED_DIR, ModelInfo
from .modelurl import ModelLocation
from .store import ObjectInfo

log = logging.getLogger(__name__)

RECORD_VERSION = 1
_RECORD_MAX_BYTES = 16 * 1024 * 1024


@dataclass
class ConversionResult:
    """What a conversion did, and where the runtime finds the result."""

    engine: str
    location: str
    """URL of the converted folder, ending in '/'."""
    copied: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    bytes_copied: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.copied or self.written or self.deleted)


def converted_prefix(location: ModelLocation, engine: Engine) -> str:
    return location.key(f"{CONVERTED_DIR}/{engine.name}/")


def record_key(location: ModelLocation, engine: Engine) -> str:
    return location.key(f"{CONVERTED_DIR}/.{engine.name}.json")


def layout_digest(location: ModelLocation, info: ModelInfo, engine: Engine, model_name: str) -> str:
    """A short digest of what the converted layout is made of (sources, sizes, ETags).

    Unchanged model → same digest; any re-logged file → a new one. The InferenceService carries
    it, so that KServe rolls out new pods when the bytes behind an unchanged storageUri change.
    """
    plan = engine.plan(info, model_name)
    objects = {o.key: o for o in location.listing()}
    wanted = _wanted_entries(location, plan.copies, plan.generated, objects)
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16]


def convert(
    location: ModelLocation, info: ModelInfo, engine: Engine, model_name: str
) -> ConversionResult:
    """Bring ``<model>/kserve/<engine>/`` up to date with the model; returns what was done."""
    store = location.store
    plan = engine.plan(info, model_name)
    dest = converted_prefix(location, engine)
    objects = {o.key: o for o in location.listing()}
    wanted = _wanted_entries(location, plan.copies, plan.generated, objects)
    present = {k[len(dest) :]: o for k, o in objects.items() if k.startswith(dest)}
    record = _read_record(location, engine)
    result = ConversionResult(engine.name, store.describe(dest))

    up_to_date = {
        rel for rel, entry in wanted.items() if _current(record.get(rel), entry, present.get(rel))
    }
    extra = sorted(set(present) - set(wanted))
    if up_to_date == set(wanted) and not extra:
        result.skipped = sorted(wanted)
        log.debug("%s is up to date; nothing to copy", result.location)
        return result

    # From here on the folder is being changed: it must not look complete until the end.
    store.delete([record_key(location, engine)])
    for rel in sorted(wanted):
        if rel in up_to_date:
            result.skipped.append(rel)
        elif rel in plan.copies:
            source = objects[location.key(plan.copies[rel])]
            log.debug("copy %s -> %s", source.key, dest + rel)
            store.copy(source, dest + rel)
            result.copied.append(rel)
            result.bytes_copied += source.size
        else:
            store.write(dest + rel, plan.generated[rel])
            result.written.append(rel)
    if extra:
        store.delete([dest + rel for rel in extra])
        result.deleted = extra
    _write_record(location, engine, wanted)
    location.listing(refresh=True)
    return result


def _wanted_entries(
    location: ModelLocation,
    copies: dict[str, str],
    generated: dict[str, bytes],
    objects: dict[str, ObjectInfo],
) -> dict[str, dict[str, Any]]:
    wanted: dict[str, dict[str, Any]] = {}
    for rel, source_rel in copies.items():
        source = objects[location.key(source_rel)]
        wanted[rel] = {"source": source_rel, "size": source.size, "etag": source.etag}
    for rel, data in generated.items():
        wanted[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return wanted


def _current(
    recorded: dict[str, Any] | None, wanted: dict[str, Any], present: ObjectInfo | None
) -> bool:
    """Is the converted file already what the plan wants?

    Yes if it is an exact copy of its source (same size and ETag: what a single CopyObject, or a
    local copy keeping the modification time, gives), or if the record says it was made from
    the wanted source and it has not changed since.
    """
    if present is None or present.size != wanted["size"]:
        return False
    if present.etag == wanted.get("etag"):
        return True
    if recorded is None:
        return False
    made_from = {k: v for k, v in recorded.items() if k != "written_etag"}
    return made_from == wanted and recorded.get("written_etag") in (None, present.etag)


def _read_record(location: ModelLocation, engine: Engine) -> dict[str, dict[str, Any]]:
    raw = location.store.read(record_key(location, engine), _RECORD_MAX_BYTES)
    if raw is None:
        return {}
    try:
        record = json.loads(raw)
        files = record["files"] if record.get("version") == RECORD_VERSION else {}
        return files if isinstance(files, dict) else {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}  # unreadable: treat as absent and rebuild


def _write_record(
    location: ModelLocation, engine: Engine, wanted: dict[str, dict[str, Any]]
) -> None:
    dest = converted_prefix(location, engine)
    written = {o.key[len(dest) :]: o.etag for o in location.store.list_objects(dest)}
    files = {rel: {**entry, "written_etag": written.get(rel)} for rel, entry in wanted.items()}
    body = {"version": RECORD_VERSION, "engine": engine.name, "files": files}
    location.store.write(
        record_key(location, engine), json.dumps(body, indent=1, sort_keys=True).encode()
    )
