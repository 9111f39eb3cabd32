"""KServe's storage initializer's S3 download, rule by rule, for the tests and the KServe
controller simulation.

The rules of kserve-storage 0.20 (``Storage._download_s3`` in kserve/kserve
python/storage/kserve_storage/kserve_storage.py): the storageUri's key is a raw prefix for one
listing (``s3://b/m/kserve/x`` also pulls ``kserve/x-other/…`` and ``kserve/x.json``); keys
ending in '/' and zero-byte objects are skipped; a key equal to the prefix downloads under its
base name and ends the listing; every other key is written at its path below the prefix, with
leading slashes stripped; no file at all is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def download(client: Any, uri: str, target: Path) -> list[str]:
    """Download ``uri`` (s3://…) into ``target`` as the storage initializer does; returns the
    relative paths written."""
    parsed = urlparse(uri)
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
    written = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for item in (item for page in pages for item in page.get("Contents", [])):
        key = item["Key"]
        if key.endswith("/") or item["Size"] == 0:
            continue
        exact = key == prefix
        relative = key.rsplit("/", 1)[-1] if exact else key.removeprefix(prefix).lstrip("/")
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(path))
        written.append(relative)
        if exact:
            break
    if not written:
        raise RuntimeError(f"Failed to fetch model. No model found in {prefix}.")
    return sorted(written)
