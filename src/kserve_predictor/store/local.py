"""A folder on the local file system as an artifact store (the embedded default)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kserve_predictor.errors import StoreError
from kserve_predictor.store import ObjectInfo


class LocalStore:
    """Objects are files below ``root``; the version tag is the size and modification time."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self, key: str) -> str:
        uri = (self.root / key).as_uri() if key else self.root.as_uri()
        return uri + "/" if key.endswith("/") else uri

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root.resolve() and self.root.resolve() not in path.parents:
            raise StoreError(f"{key!r} lies outside {self.root}")
        return path

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        # S3 semantics: a prefix may end inside a name, so walk the folder it starts in.
        folder = (
            self.root / prefix
            if prefix.endswith("/") or not prefix
            else (self.root / prefix).parent
        )
        found = []
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    stat = path.stat()
                    found.append(
                        ObjectInfo(
                            key, stat.st_size, f"{stat.st_size}-{stat.st_mtime_ns}", stat.st_mtime
                        )
                    )
        return sorted(found, key=lambda o: o.key)

    def read(self, key: str, max_bytes: int) -> bytes | None:
        path = self._path(key)
        if not path.is_file():
            return None
        if path.stat().st_size > max_bytes:
            raise StoreError(
                f"{self.describe(key)} is larger than {max_bytes} bytes; not a metadata file"
            )
        return path.read_bytes()

    def read_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                f.seek(max(start, 0))
                return f.read(max(length, 0))
        except OSError as e:
            raise StoreError(f"cannot read {self.describe(key)}: {e.strerror}") from e

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def copy(self, source: ObjectInfo, dest_key: str) -> None:
        dest = self._path(dest_key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self._path(source.key), dest)  # keeps mtime, so the copy's tag matches

    def download(self, source: ObjectInfo, path: Path) -> None:
        shutil.copy2(self._path(source.key), path)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)
