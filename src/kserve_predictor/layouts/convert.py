"""Converted layouts that never change once written, named by what they contain.

An engine's layout goes to ``<model>/kserve/<engine>-<digest>/``, where the digest covers the
engine, every copied file's destination and source (key, size, ETag) and every generated file's
destination and content (for Triton: the repository folder, named after the application, and
``config.pbtxt``). A new model version or a new application name gives a new folder; deploying
the same model twice with the same settings shares one. Nothing in a folder is ever rewritten
with other bytes, so a pod that restarts while another deployment converts never sees a mix.

The completion record ``<model>/kserve/<engine>-<digest>.json`` is written last. It lives beside
the folder, not in it: the storageUri ends in '/', so KServe's prefix download never pulls it,
and runtimes that pick files by extension (xgbserver takes any *.json) never see it. A folder
without its record is unfinished: the next run completes it, and nobody is pointed at it before.
Old folders are removed only by ``kserve-predictor gc`` (gc.py), never by a conversion.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import re
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from kserve_predictor.engines import Engine
from kserve_predictor.errors import StoreError
from kserve_predictor.model.mlmodel import CONVERTED_DIR, ModelInfo
from kserve_predictor.model.urls import ModelLocation
from kserve_predictor.progress import NO_PROGRESS, Progress
from kserve_predictor.store import ObjectInfo

log = logging.getLogger("kserve_predictor.convert")  # stable log channel, not the path

RECORD_VERSION = 2
LAYOUT_NAME = re.compile(r"^(?P<engine>[a-z][a-z0-9]*)-(?P<digest>[0-9a-f]{16})$")
"""A layout folder's name below ``<model>/kserve/``."""
COPY_CONCURRENCY = 16
"""Server-side copies in flight at once (boto3 clients are thread-safe)."""
_RECORD_MAX_BYTES = 16 * 1024 * 1024

# KServe's storage initializer skips zero-byte objects, so an empty file never reaches the pod
# (an empty __init__.py in code/ breaks the import). Where a comment line means the same as an
# empty file, the converted copy gets one; the source stays untouched. Other empty files (JSON,
# data, binaries) cannot be padded without changing what they mean: they are left out, with a
# warning, which is exactly what the pod would see anyway.
KEPT_NON_EMPTY = b"# kept non-empty: KServe's storage initializer skips zero-byte objects\n"
_COMMENT_SUFFIXES = (".py", ".pyi", ".sh", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".r")
_COMMENT_NAMES = re.compile(r"^requirements[\w.-]*\.txt$")


@dataclass(frozen=True)
class Layout:
    """The plan of one converted layout: where it goes and what it holds."""

    engine: str
    digest: str
    prefix: str
    """Store key of the layout folder, ending in '/'."""
    record_key: str
    copies: dict[str, ObjectInfo]
    """Destination (relative to the folder) → source object."""
    generated: dict[str, bytes]
    """Destination → content written by the conversion."""
    left_out: tuple[str, ...] = ()
    """Zero-byte source files that cannot be padded (see KEPT_NON_EMPTY)."""

    @property
    def files(self) -> set[str]:
        return set(self.copies) | set(self.generated)

    def size(self, relative: str) -> int:
        source = self.copies.get(relative)
        return source.size if source is not None else len(self.generated[relative])


@dataclass
class ConversionResult:
    """What a conversion did, and where the runtime finds the result."""

    engine: str
    location: str
    """URL of the converted folder, ending in '/'."""
    digest: str = ""
    copied: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    bytes_copied: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.copied or self.written or self.deleted)


def plan_layout(
    location: ModelLocation, info: ModelInfo, engine: Engine, model_name: str
) -> Layout:
    """The layout for this model, engine and name, from the model's listing alone (no writes)."""
    plan = engine.plan(info, model_name)
    objects = {o.key: o for o in location.listing()}
    copies: dict[str, ObjectInfo] = {}
    generated = dict(plan.generated)
    left_out = []
    for dest, source_rel in plan.copies.items():
        source = objects[location.key(source_rel)]
        if source.size > 0:
            copies[dest] = source
        elif _takes_a_comment(dest):
            generated[dest] = KEPT_NON_EMPTY
        else:
            left_out.append(dest)
    contents: dict[str, Any] = {"engine": engine.name, "files": {}}
    for dest, source in copies.items():
        contents["files"][dest] = {
            "source": location.relative(source.key),
            "size": source.size,
            "etag": source.etag,
        }
    for dest, data in generated.items():
        contents["files"][dest] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    digest = hashlib.sha256(json.dumps(contents, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{engine.name}-{digest}"
    return Layout(
        engine=engine.name,
        digest=digest,
        prefix=location.key(f"{CONVERTED_DIR}/{name}/"),
        record_key=location.key(f"{CONVERTED_DIR}/{name}.json"),
        copies=copies,
        generated=generated,
        left_out=tuple(sorted(left_out)),
    )


def converted_prefix(
    location: ModelLocation, info: ModelInfo, engine: Engine, model_name: str
) -> str:
    """Store key of the layout folder (ending in '/') that ``convert`` writes and a storageUri
    names; known before anything is written."""
    return plan_layout(location, info, engine, model_name).prefix


def convert(
    location: ModelLocation,
    info: ModelInfo,
    engine: Engine,
    model_name: str,
    progress: Progress = NO_PROGRESS,
) -> ConversionResult:
    """Make sure the model's layout for ``engine`` exists and is complete; returns what was done.

    An unchanged model costs the model's listing (shared with detection) and one record read.
    ``progress`` is told of each file copied or written.
    """
    store = location.store
    layout = plan_layout(location, info, engine, model_name)
    result = ConversionResult(
        engine.name, store.describe(layout.prefix), layout.digest, left_out=list(layout.left_out)
    )
    for relative in layout.left_out:
        log.warning(
            "%s is empty and KServe's storage initializer skips empty files: the served copy "
            "leaves it out",
            relative,
        )
    objects = {o.key: o for o in location.listing()}
    present = _below(objects, layout.prefix)
    record = _read_record(location, layout.record_key) if layout.record_key in objects else None
    if record is not None and _complete(record, layout, present):
        result.skipped = sorted(layout.files)
        log.debug("%s is complete; nothing to copy", result.location)
        return result

    # Files an interrupted run finished are kept: in a folder named by its content, a file with
    # the planned size can only be the planned file (copies and writes replace whole objects);
    # in a damaged layout (files changed since its record), only files the record still matches.
    recorded = (record or {}).get("files") or {}
    done = {
        rel
        for rel in layout.files
        if rel in present
        and present[rel].size == layout.size(rel)
        and (rel not in recorded or recorded[rel].get("etag") == present[rel].etag)
    }
    result.skipped = sorted(done)
    result.deleted = sorted(set(present) - layout.files)
    if result.deleted:
        store.delete([layout.prefix + rel for rel in result.deleted])
    tasks: list[Callable[[], None]] = []
    for rel in sorted(layout.files - done):
        if rel in layout.copies:
            source = layout.copies[rel]
            tasks.append(_ticking(progress, source.size, store.copy, source, layout.prefix + rel))
            result.copied.append(rel)
            result.bytes_copied += source.size
        else:
            data = layout.generated[rel]
            tasks.append(_ticking(progress, len(data), store.write, layout.prefix + rel, data))
            result.written.append(rel)
    progress.start("copying", len(tasks), sum(layout.size(rel) for rel in layout.files - done))
    try:
        run_concurrently(tasks)
    finally:
        progress.finish()

    written = _below({o.key: o for o in location.listing(refresh=True)}, layout.prefix)
    missing = sorted(
        rel for rel in layout.files if rel not in written or written[rel].size != layout.size(rel)
    )
    if missing or set(written) != layout.files:
        raise StoreError(
            f"{result.location} changed while it was being converted ({', '.join(missing[:3]) or 'extra files'}); "
            "is `kserve-predictor gc` running on this model? run again"
        )
    _write_record(location, layout, written)
    return result


def run_concurrently(tasks: list[Callable[[], None]], workers: int | None = None) -> None:
    """Run the tasks on a pool of ``workers`` threads (default COPY_CONCURRENCY); the first
    failure cancels what has not started and is raised once the running ones are done."""
    workers = workers or COPY_CONCURRENCY
    if len(tasks) <= 1 or workers == 1:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in finished and f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True)
            failed.result()


def _ticking(
    progress: Progress, nbytes: int, function: Callable[..., None], *args: Any
) -> Callable[[], None]:
    """``function(*args)``, then one tick of ``nbytes`` bytes."""

    def task() -> None:
        function(*args)
        progress.advance(nbytes)

    return task


def _takes_a_comment(relative: str) -> bool:
    name = posixpath.basename(relative).lower()
    return name.endswith(_COMMENT_SUFFIXES) or bool(_COMMENT_NAMES.match(name))


def _below(objects: dict[str, ObjectInfo], prefix: str) -> dict[str, ObjectInfo]:
    return {k[len(prefix) :]: o for k, o in objects.items() if k.startswith(prefix)}


def _complete(record: dict[str, Any], layout: Layout, present: dict[str, ObjectInfo]) -> bool:
    """Does the record describe exactly the files that are there now?"""
    files = record["files"]
    if record.get("digest") != layout.digest or not set(files) == set(present) == layout.files:
        return False
    return all(
        entry.get("size") == present[rel].size and entry.get("etag") == present[rel].etag
        for rel, entry in files.items()
    )


def _read_record(location: ModelLocation, key: str) -> dict[str, Any] | None:
    raw = location.store.read(key, _RECORD_MAX_BYTES)
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None  # unreadable: treat as absent and rebuild
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        return None
    files = record.get("files")
    if not isinstance(files, dict) or not all(isinstance(e, dict) for e in files.values()):
        return None
    return record


def _write_record(location: ModelLocation, layout: Layout, written: dict[str, ObjectInfo]) -> None:
    files = {rel: {"size": o.size, "etag": o.etag} for rel, o in sorted(written.items())}
    body = {
        "version": RECORD_VERSION,
        "engine": layout.engine,
        "digest": layout.digest,
        "files": files,
    }
    location.store.write(layout.record_key, json.dumps(body, indent=1, sort_keys=True).encode())
