"""Removing converted layouts that nothing uses: ``kserve-predictor gc`` and ``delete --gc``.

Conversions never delete or overwrite a layout (convert.py), so old ones stay until this runs.
It lists the layouts under ``<model>/kserve/``, asks the cluster which InferenceServices still
reference each (KServe downloads a storageUri as a raw key prefix, so a URI that is a prefix of
the layout, or lies inside it, is a reference), and removes only layouts that no service
references and that are older than the grace period. A layout is kept whenever its references
cannot be checked: some namespace's InferenceServices could not be listed, or the folder is not
one of ours. Removal deletes the completion record first, so a half-removed layout never looks
complete to a conversion, which then rebuilds it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kserve_predictor.engines import ENGINES
from kserve_predictor.errors import UsageError
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.isvc import engine_of
from kserve_predictor.layouts.convert import LAYOUT_NAME
from kserve_predictor.model.mlmodel import CONVERTED_DIR
from kserve_predictor.model.urls import ModelLocation
from kserve_predictor.store import ObjectInfo

log = logging.getLogger("kserve_predictor.gc")  # stable log channel, not the path

DEFAULT_GRACE = "24h"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

LAYOUT, LEGACY, UNKNOWN = "layout", "legacy", "unknown"


@dataclass
class LayoutUse:
    """One folder below ``<model>/kserve/`` and what gc decided about it."""

    name: str
    url: str
    kind: str
    """layout (``<engine>-<digest>``), legacy (``<engine>``, written by releases before
    immutable layouts) or unknown (not ours: always kept)."""
    complete: bool
    files: int
    bytes: int
    modified: float
    referenced_by: list[str] = field(default_factory=list)
    remove: bool = False
    reason: str = ""
    keys: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "kind": self.kind,
            "complete": self.complete,
            "files": self.files,
            "bytes": self.bytes,
            "age_seconds": round(max(0.0, time.time() - self.modified)),
            "referenced_by": self.referenced_by,
            "action": "remove" if self.remove else "keep",
            "reason": self.reason,
        }


@dataclass
class GcResult:
    model: str
    layouts: list[LayoutUse]
    unchecked: list[str]
    """Namespaces whose InferenceServices could not be listed (so every layout was kept)."""
    dry_run: bool
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dry_run": self.dry_run,
            "unchecked_namespaces": self.unchecked,
            "removed": self.removed,
            "layouts": [layout.as_dict() for layout in self.layouts],
        }


@dataclass(frozen=True)
class References:
    """Every storage location the InferenceServices name, and where they could not be read."""

    uris: list[tuple[str, str | None, str]]
    """(namespace/name, bucket or None when unknown, key prefix)."""
    unchecked: list[str]


def parse_duration(text: str, source: str = "--grace-period") -> float:
    """Seconds in ``90s``, ``30m``, ``24h``, ``7d`` or a plain number of seconds."""
    match = _DURATION.match(text or "")
    if not match:
        raise UsageError(f"{source} {text!r} is not a duration; use e.g. 0, 90s, 30m, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def find_references(cluster: Cluster, namespaces: list[str] | None = None) -> References:
    """The storage URIs of InferenceServices in ``namespaces`` (None: every namespace: one
    cluster-wide list, else namespace by namespace as far as this identity can)."""
    if not namespaces:
        items = cluster.list_inference_services(None)
        if items is not None:
            return References(_uris_of(items), [])
        listed = cluster.list_namespaces()
        if listed is None:
            return References(
                [],
                [
                    "every namespace (neither InferenceServices nor namespaces can be listed cluster-wide)"
                ],
            )
        log.info("cannot list InferenceServices cluster-wide; checking %d namespaces", len(listed))
        namespaces = listed
    uris: list[tuple[str, str | None, str]] = []
    unchecked = []
    for namespace in namespaces:
        items = cluster.list_inference_services(namespace)
        if items is None:
            unchecked.append(namespace)
        else:
            uris.extend(_uris_of(items))
    return References(uris, unchecked)


def collect(
    location: ModelLocation,
    cluster: Cluster,
    grace_seconds: float,
    namespaces: list[str] | None = None,
    dry_run: bool = False,
    only: str | None = None,
    deleted: str | None = None,
) -> GcResult:
    """Remove the model's unreferenced layouts older than ``grace_seconds`` (``only``: just the
    layout of that name); with ``dry_run``, only say what would go. ``deleted`` names a service
    ("namespace/name") just deleted, which may linger in lists until its finalizers ran."""
    bucket = bucket_of(location)
    layouts = [u for u in _layouts(location) if only is None or u.name == only]
    references = find_references(cluster, namespaces) if layouts else References([], [])
    now = time.time()
    for use in layouts:
        folder = location.key(f"{CONVERTED_DIR}/{use.name}/")
        use.referenced_by = sorted(
            {
                service
                for service, ref_bucket, key in references.uris
                if service != deleted
                and ref_bucket in (None, bucket)
                and (folder.startswith(key) or key.startswith(folder))
            }
        )
        age = now - use.modified
        if use.kind == UNKNOWN:
            use.reason = "not a kserve-predictor layout"
        elif use.referenced_by:
            use.reason = f"used by {', '.join(use.referenced_by)}"
        elif references.unchecked:
            use.reason = f"references cannot be checked in {', '.join(references.unchecked)}"
        elif age < grace_seconds:
            use.reason = (
                f"younger than the grace period ({_human_age(age)} < {_human_age(grace_seconds)})"
            )
        else:
            use.remove = True
            use.reason = f"unreferenced, {_human_age(age)} old"
    result = GcResult(location.url, layouts, references.unchecked, dry_run)
    for use in layouts:
        if use.remove and not dry_run:
            _remove(location, use)
            result.removed.append(use.url)
    return result


def collect_after_delete(
    cluster: Cluster, isvc: dict[str, Any], s3: Any, namespaces: list[str] | None = None
) -> GcResult | None:
    """After deleting ``isvc``: remove its layout if nothing else uses it (no grace period);
    None when its storageUri is not a layout kserve-predictor wrote."""
    from kserve_predictor.model.urls import resolve

    source = layout_source(engine_of(isvc)[2])
    if source is None:
        return None
    model_url, name = source
    meta = isvc.get("metadata") or {}
    deleted = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    return collect(resolve(model_url, s3), cluster, 0, namespaces, only=name, deleted=deleted)


def layout_source(storage_uri: str) -> tuple[str, str] | None:
    """The model folder and layout name of a storageUri that names a layout kserve-predictor
    wrote (``<model>/kserve/<layout>``); None for anything else."""
    marker = f"/{CONVERTED_DIR}/"
    if not storage_uri.startswith("s3://") or marker not in storage_uri:
        return None
    model_url, _, rest = storage_uri.rpartition(marker)
    name = rest.split("/", 1)[0]
    return (model_url, name) if _kind(name) in (LAYOUT, LEGACY) else None


def _uris_of(items: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    found = []
    for isvc in items:
        meta = isvc.get("metadata") or {}
        service = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        for bucket, key in _storage_refs(isvc.get("spec") or {}):
            found.append((service, bucket, key))
    return found


def _storage_refs(node: Any, parent: str = "") -> Iterator[tuple[str | None, str]]:
    """Every S3 location a spec names, wherever it names it (storageUri, storageUris, args,
    env): being too eager only keeps a layout longer. ``storage: {path}`` names a key in a
    bucket the spec does not say: it matches that key in any bucket."""
    if isinstance(node, dict):
        if parent == "storage" and isinstance(node.get("path"), str):
            yield None, node["path"].lstrip("/")
        for key, value in node.items():
            yield from _storage_refs(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _storage_refs(value, parent)
    elif isinstance(node, str) and node.startswith("s3://"):
        bucket, _, key = node[len("s3://") :].partition("/")
        yield bucket, key


def bucket_of(location: ModelLocation) -> str:
    """The model's bucket; a UsageError for a model that is not in S3."""
    if not location.url.startswith("s3://"):
        raise UsageError(
            f"model URL {location.url!r} is not in S3; gc collects the layouts InferenceServices "
            "read from S3 (a local folder's kserve/ can simply be deleted)"
        )
    return location.url[len("s3://") :].split("/", 1)[0]


def _kind(name: str) -> str:
    match = LAYOUT_NAME.match(name)
    if match and match.group("engine") in ENGINES:
        return LAYOUT
    return LEGACY if name in ENGINES else UNKNOWN


def _layouts(location: ModelLocation) -> list[LayoutUse]:
    """The folders below ``<model>/kserve/``, each with its record beside it."""
    base = location.key(f"{CONVERTED_DIR}/")
    groups: dict[str, list[ObjectInfo]] = {}
    for obj in location.listing(refresh=True):
        if not obj.key.startswith(base):
            continue
        rest = obj.key[len(base) :]
        if "/" in rest:
            name = rest.split("/", 1)[0]
        else:  # a record beside its folder: <name>.json, or .<engine>.json for legacy ones
            name = rest.removesuffix(".json").removeprefix(".")
        groups.setdefault(name, []).append(obj)
    uses = []
    for name, objects in sorted(groups.items()):
        kind = _kind(name)
        record = base + (f".{name}.json" if kind == LEGACY else f"{name}.json")
        uses.append(
            LayoutUse(
                name=name,
                url=location.store.describe(f"{base}{name}/"),
                kind=kind,
                complete=any(o.key == record for o in objects),
                files=sum(1 for o in objects if o.key.startswith(f"{base}{name}/")),
                bytes=sum(o.size for o in objects),
                modified=max(o.modified for o in objects),
                keys=[o.key for o in objects],
            )
        )
    return uses


def _remove(location: ModelLocation, use: LayoutUse) -> None:
    folder = location.key(f"{CONVERTED_DIR}/{use.name}/")
    records = [k for k in use.keys if not k.startswith(folder)]
    location.store.delete(records)  # first: from now on it never looks complete
    location.store.delete([k for k in use.keys if k.startswith(folder)])
    log.info("removed %s (%d files)", use.url, use.files)


def _human_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0", "")
    return f"{seconds:.0f}s"
