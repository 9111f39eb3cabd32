"""Field ownership: ``metadata.managedFields`` and a simplified server-side apply."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, _cause
from .patch import merge_patch
from .resources import _MISSING, FieldPath, Obj, ResourceType, _get_path, _now

# --------------------------------------------------------------------------------------------
# Field ownership (a simplified server-side apply)
#
# A field is a path of map keys; lists and scalars are atomic leaves. Each manager owns a set of
# paths, rendered into metadata.managedFields as FieldsV1 ({"f:spec": {"f:x": {}}}).


@dataclass
class _Owner:
    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[FieldPath]


def _tracked_leaves(obj: Obj, rt: ResourceType) -> dict[FieldPath, Any]:
    """Leaf fields subject to ownership: everything but identity, system metadata and status."""
    leaves: dict[FieldPath, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "metadata") or (key == "status" and rt.status_subresource):
            continue
        _collect_leaves(value, (key,), leaves)
    meta = obj.get("metadata") or {}
    for key in ("labels", "annotations", "finalizers", "ownerReferences"):
        if key in meta:
            _collect_leaves(meta[key], ("metadata", key), leaves)
    return leaves


def _collect_leaves(value: Any, path: FieldPath, out: dict[FieldPath, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _collect_leaves(item, (*path, key), out)
    else:
        out[path] = value


def _related(a: FieldPath, b: FieldPath) -> bool:
    return a[: len(b)] == b or b[: len(a)] == a


def _read_owners(obj: Obj | None) -> list[_Owner]:
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [
        _Owner(
            e["manager"],
            e.get("operation", "Update"),
            e.get("apiVersion", ""),
            e.get("time", ""),
            _paths_from_fields(e.get("fieldsV1") or {}),
        )
        for e in entries
        if isinstance(e, dict) and e.get("manager")
    ]


def _paths_from_fields(fields: Obj, prefix: FieldPath = ()) -> set[FieldPath]:
    paths: set[FieldPath] = set()
    for key, sub in fields.items():
        if key == ".":
            paths.add(prefix)
        elif sub:
            paths |= _paths_from_fields(sub, (*prefix, key[2:]))
        else:
            paths.add((*prefix, key[2:]))
    return paths


def _fields_from_paths(paths: set[FieldPath]) -> Obj:
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    for path in paths:  # a path that also has owned children is marked with "."
        node = root
        for key in path:
            node = node[f"f:{key}"]
        if any(k != "." for k in node):
            node["."] = {}
    return root


def _owner(owners: list[_Owner], manager: str, operation: str, rt: ResourceType) -> _Owner:
    for owner in owners:
        if owner.manager == manager and owner.operation == operation:
            return owner
    owners.append(_Owner(manager, operation, rt.api_version, _now(), set()))
    return owners[-1]


def _changed_paths(before: Obj | None, after: Obj, rt: ResourceType) -> set[FieldPath]:
    old = _tracked_leaves(before, rt) if before else {}
    new = _tracked_leaves(after, rt)
    changed = {path for path, value in new.items() if old.get(path, _MISSING) != value}
    return changed | (old.keys() - new.keys())


def _record_update(
    owners: list[_Owner], manager: str, old: Obj | None, new: Obj, rt: ResourceType
) -> None:
    """A non-apply write: its manager takes every field it changed, away from the others."""
    changed = _changed_paths(old, new, rt)
    if not changed:
        return
    mine = _owner(owners, manager, "Update", rt)
    for owner in owners:
        if owner is not mine:
            owner.paths = {p for p in owner.paths if not any(_related(p, c) for c in changed)}
    mine.paths |= changed & _tracked_leaves(new, rt).keys()
    mine.time = _now()


def _apply_conflicts(
    others: list[_Owner], live: Obj, applied: Obj, wanted: dict[FieldPath, Any]
) -> list[tuple[_Owner, FieldPath]]:
    """Fields another manager owns that this apply would set to a different value."""
    found = []
    for owner in others:
        for owned in sorted(owner.paths):
            if any(_conflicts_at(owned, path, live, applied) for path in wanted):
                found.append((owner, owned))
    return found


def _conflicts_at(owned: FieldPath, path: FieldPath, live: Obj, applied: Obj) -> bool:
    if not _related(owned, path):
        return False
    if len(owned) < len(path):  # owned leaf above the applied field: only a type change conflicts
        return not isinstance(_get_path(live, owned), dict)
    return _get_path(live, path) != _get_path(applied, path)


def _apply_conflict_error(conflicts: list[tuple[_Owner, FieldPath]]) -> ApiError:
    causes = [
        _cause(
            "." + ".".join(path),
            f'conflict with "{owner.manager}" using {owner.api_version}',
            "FieldManagerConflict",
        )
        for owner, path in conflicts
    ]
    listed = "; ".join(f"{c['message']}: {c['field']}" for c in causes)
    plural = "s" if len(causes) > 1 else ""
    return ApiError(
        409,
        f"Apply failed with {len(causes)} conflict{plural}: {listed}",
        details={"causes": causes},
    )


def server_side_apply(
    live: Obj | None, applied: Obj, manager: str, force: bool, rt: ResourceType
) -> tuple[Obj, list[_Owner]]:
    """Merge an applied configuration into live: returns the object and updated owners.

    Fields this manager applied before but no longer sends are removed unless another manager
    owns them; fields owned by others with different values conflict (409) unless ``force``.
    """
    owners = _read_owners(live)
    base = live or {}
    wanted = _tracked_leaves(applied, rt)
    others = [owner for owner in owners if owner.manager != manager]
    conflicts = _apply_conflicts(others, base, applied, wanted)
    if conflicts and not force:
        raise _apply_conflict_error(conflicts)
    for owner, path in conflicts:
        owner.paths.discard(path)
    mine = _owner(owners, manager, "Apply", rt)
    merged = copy.deepcopy(base)
    for path in mine.paths - wanted.keys():
        if not any(_related(path, q) for owner in others for q in owner.paths):
            _remove_path(merged, path)
    merged = merge_patch(merged, applied)
    mine.paths, mine.time = set(wanted), _now()
    return merged, owners


def _store_owners(obj: Obj, owners: list[_Owner], rt: ResourceType) -> None:
    """Drop ownership of fields that no longer exist, then render managedFields."""
    present = set()
    for leaf in _tracked_leaves(obj, rt):
        present |= {leaf[:i] for i in range(1, len(leaf) + 1)}
    entries = []
    for owner in owners:
        owner.paths &= present
        if owner.paths:
            entries.append(
                {
                    "manager": owner.manager,
                    "operation": owner.operation,
                    "apiVersion": owner.api_version,
                    "time": owner.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _fields_from_paths(owner.paths),
                }
            )
    if entries:
        obj["metadata"]["managedFields"] = entries
    else:
        obj["metadata"].pop("managedFields", None)


def _remove_path(obj: Obj, path: FieldPath) -> None:
    """Delete the field at path, then any maps it leaves empty (but not top-level sections)."""
    parents: list[Obj] = []
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        parents.append(node)
        node = node[key]
    if not isinstance(node, dict) or path[-1] not in node:
        return
    del node[path[-1]]
    for depth in range(len(path) - 1, 1, -1):
        parent, key = parents[depth - 1], path[depth - 1]
        if parent[key] == {}:
            del parent[key]
