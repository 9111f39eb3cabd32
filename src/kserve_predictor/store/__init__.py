"""Artifact stores behind one small interface.

A store addresses objects by ``/``-separated keys relative to its root. Conversion only ever
lists, reads small metadata files, copies inside the store and writes small generated files,
so model bytes never pass through this process when the store can copy server-side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key, size in bytes, a version tag (S3 ETag or local stamp) and
    when it was last written (seconds since the epoch; 0 when unknown)."""

    key: str
    size: int
    etag: str
    modified: float = 0.0


class Store(Protocol):
    """What the step needs from an artifact store."""

    def describe(self, key: str) -> str:
        """A URL naming ``key`` in this store, for messages and manifests."""
        ...

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""
        ...

    def read(self, key: str, max_bytes: int) -> bytes | None:
        """The content of a small object, or None if it does not exist.

        Raises StoreError if it is larger than ``max_bytes``: metadata only, never model weights.
        """
        ...

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of an object from offset ``start`` (fewer at its end): a ranged read,
        so that a header or trailer of a model file is read without its weights."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Create or replace a small object."""
        ...

    def copy(self, source: ObjectInfo, dest_key: str) -> None:
        """Copy ``source`` to ``dest_key`` inside the store (server-side where possible)."""
        ...

    def delete(self, keys: list[str]) -> None:
        """Delete objects; keys that do not exist are ignored."""
        ...

    def download(self, source: ObjectInfo, path: Path) -> None:
        """Stream one object into a local file (for the local runtime's cache)."""
        ...


def join_key(*parts: str) -> str:
    """Join key parts with single slashes, ignoring empty parts."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))
