"""Watch streams: the initial state or a replay, then changes as they happen, bookmarks,
410 Expired for a history that no longer reaches back, and selectors seen from the watcher."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

from .errors import ApiError, status_body
from .request import Request, _Target
from .resources import Obj, ResourceType
from .storage import _Event, _Store


class AbruptClose(Exception):
    """Raised by a watch to make the server cut the connection without ending the stream."""


class _Watches:
    """The watch streams of the API, over its store and its switches."""

    store: _Store
    watch_epoch: int
    abrupt_drop: bool
    frozen: bool
    active_watches: int
    stopping: bool

    def _watch_events(
        self,
        target: _Target,
        matches: Callable[[Obj], bool],
        start_at: int | None,
        timeout: float,
        request: Request,
        bookmarks: bool = False,
    ) -> Generator[Obj, None, None]:
        """Without a resourceVersion: ADDED for what exists, then changes; with one: replay.

        With ``allowWatchBookmarks``, a BOOKMARK carrying the current resourceVersion is sent
        like the real watch cache sends it: once a minute, and 2 s before the watch's timeout.
        """
        deadline = time.monotonic() + timeout if timeout else None
        bookmark_at = _next_bookmark(deadline) if bookmarks else None
        with self.store.cond:
            if start_at is None:
                cursor = self.store.revision
                current = self.store.items(target.rtype.plural, target.namespace)
                initial = [obj for obj in current if matches(obj)]
            else:
                cursor, initial = start_at, []
            epoch = self.watch_epoch
            self.active_watches += 1
            self.store.cond.notify_all()
        try:
            for obj in initial:
                yield {"type": "ADDED", "object": obj}
            while True:
                events = self._next_events(cursor, epoch, deadline, request, bookmark_at)
                if events is None:
                    return
                if isinstance(events, str):  # time for a bookmark
                    yield self._bookmark(target.rtype)
                    bookmark_at = time.monotonic() + 60
                    continue
                if isinstance(events, dict):  # expired history
                    yield events
                    return
                for event in events:
                    cursor = event.revision
                    view = _watch_view(event, target, matches)
                    if view is not None:
                        yield view
        finally:
            with self.store.cond:
                self.active_watches -= 1
                self.store.cond.notify_all()

    def _bookmark(self, rt: ResourceType) -> Obj:
        with self.store.cond:
            revision = self.store.revision
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": rt.kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(revision)},
            },
        }

    def _next_events(
        self,
        cursor: int,
        epoch: int,
        deadline: float | None,
        request: Request,
        bookmark_at: float | None = None,
    ) -> list[_Event] | Obj | str | None:
        """Block until events after cursor exist; None ends the stream, a dict is an ERROR,
        "BOOKMARK" says a bookmark is due."""
        with self.store.cond:
            while True:
                if self.stopping:
                    return None
                if self.frozen:  # a hung server: no events, no end, whatever the timeout
                    if request.client_gone():
                        return None
                    self.store.cond.wait(0.25)
                    continue
                if self.watch_epoch != epoch:
                    if self.abrupt_drop:
                        raise AbruptClose
                    return None
                events = self.store.events_after(cursor)
                if events is None:
                    message = f"too old resource version: {cursor} ({self.store.oldest_revision()})"
                    return {"type": "ERROR", "object": status_body(410, "Expired", message)}
                if events:
                    return events
                if bookmark_at is not None and time.monotonic() >= bookmark_at:
                    return "BOOKMARK"
                remaining = deadline - time.monotonic() if deadline else 0.25
                if remaining <= 0 or request.client_gone():
                    return None
                self.store.cond.wait(min(remaining, 0.25))


def _next_bookmark(deadline: float | None) -> float:
    """When the watch cache sends the next bookmark: in a minute, or 2 s before the end."""
    heartbeat = time.monotonic() + 60
    return heartbeat if deadline is None else min(heartbeat, deadline - 2)


def _parse_revision(text: str) -> int:
    if not text.isdigit():
        raise ApiError(400, f'invalid resource version "{text}"')
    return int(text)


def _watch_view(event: _Event, target: _Target, matches: Callable[[Obj], bool]) -> Obj | None:
    """The event as this watch sees it; objects moving in or out of a selector appear as
    ADDED or DELETED, like the real watch cache."""
    if event.plural != target.rtype.plural or target.namespace not in (None, event.namespace):
        return None
    now = event.type != "DELETED" and matches(event.obj)
    before = event.old is not None and matches(event.old)
    if event.type == "DELETED":
        kind = "DELETED" if before else None
    elif now:
        kind = "MODIFIED" if before else "ADDED"
    else:
        kind = "DELETED" if before else None
    return None if kind is None else {"type": kind, "object": event.obj}
