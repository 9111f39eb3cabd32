"""Stored objects, the global resourceVersion and the bounded event history watches replay."""

from __future__ import annotations

import copy
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .resources import Obj, ResourceType, _now, _without

# --------------------------------------------------------------------------------------------
# Storage and history


@dataclass(frozen=True)
class _Event:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    plural: str
    namespace: str
    obj: Obj
    old: Obj | None


_Key = tuple[str, str, str]  # (plural, namespace or "", name)


def _key(rt: ResourceType, namespace: str | None, name: str) -> _Key:
    return (rt.plural, (namespace or "") if rt.namespaced else "", name)


def _comparable(obj: Obj) -> Obj:
    """The object without what a no-op write may still change (resourceVersion, timestamps)."""
    result = copy.deepcopy(obj)
    meta = result.get("metadata") or {}
    for key in ("resourceVersion", "generation"):
        meta.pop(key, None)
    for entry in meta.get("managedFields") or []:
        entry.pop("time", None)
    return result


class _Store:
    """Objects, the global resourceVersion and a bounded event history, behind one condition.

    Stored dicts are never mutated in place; writers always store a new dict.
    """

    def __init__(self, history_size: int, on_event: Callable[[_Event], None]) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.revision = 0
        self._objects: dict[_Key, Obj] = {}
        self._history: deque[_Event] = deque(maxlen=history_size)
        self._on_event = on_event

    def get(self, key: _Key) -> Obj | None:
        return self._objects.get(key)

    def items(self, plural: str, namespace: str | None) -> list[Obj]:
        keys = sorted(k for k in self._objects if k[0] == plural and namespace in (None, k[1]))
        return [self._objects[k] for k in keys]

    def save(self, rt: ResourceType, new: Obj, old: Obj | None) -> Obj:
        """Store new over old; returns old itself when nothing would change."""
        with self.cond:
            if old is not None and _comparable(old) == _comparable(new):
                return old
            self.revision += 1
            stored = _stamp(rt, new, old, self.revision)
            meta = stored["metadata"]
            self._objects[_key(rt, meta.get("namespace"), meta["name"])] = stored
            self._record("ADDED" if old is None else "MODIFIED", rt, stored, old)
            return stored

    def remove(self, rt: ResourceType, obj: Obj) -> Obj:
        with self.cond:
            self.revision += 1
            final = copy.deepcopy(obj)
            final["metadata"]["resourceVersion"] = str(self.revision)
            meta = final["metadata"]
            del self._objects[_key(rt, meta.get("namespace"), meta["name"])]
            self._record("DELETED", rt, final, obj)
            return final

    def events_after(self, revision: int) -> list[_Event] | None:
        """Events newer than revision, or None when the history no longer reaches back there."""
        if revision >= self.revision:
            return []
        if not self._history or self._history[0].revision > revision + 1:
            return None
        return [event for event in self._history if event.revision > revision]

    def oldest_revision(self) -> int:
        return self._history[0].revision - 1 if self._history else self.revision

    def _record(self, kind: str, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        namespace = obj["metadata"].get("namespace", "")
        event = _Event(self.revision, kind, rt.plural, namespace, obj, old)
        self._history.append(event)
        self._on_event(event)
        self.cond.notify_all()


def _stamp(rt: ResourceType, new: Obj, old: Obj | None, revision: int) -> Obj:
    """System metadata: uid, creationTimestamp, resourceVersion, generation (custom resources)."""
    obj = copy.deepcopy(new)
    meta = obj.setdefault("metadata", {})
    meta["resourceVersion"] = str(revision)
    if old is None:
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
    if rt.custom:
        # everything but metadata (and status, when it is a subresource) is "spec" here
        ignored = ("metadata", "status") if rt.status_subresource else ("metadata",)
        previous = (old or {}).get("metadata", {}).get("generation", 0)
        spec_changed = old is None or _without(old, *ignored) != _without(obj, *ignored)
        meta["generation"] = previous + 1 if spec_changed else previous
    return obj
