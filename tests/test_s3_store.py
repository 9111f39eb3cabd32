"""The S3 store against moto's S3 server: the multipart copy threshold is a setting; a copy
above it goes part by part (UploadPartCopy, concurrently) without the bytes leaving the server;
every copy is conditional on the listed ETag and uses the listed size (no HEAD)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import S3Recording, S3Server

from kserve_predictor.errors import StoreError, UsageError
from kserve_predictor.settings.groups import S3Settings
from kserve_predictor.store.s3 import PART_CONCURRENCY, S3Store, _transient, s3_error

MiB = 1024**2


def part_store(s3: S3Server, bucket: str) -> S3Store:
    """A store whose threshold (and part size) is S3's smallest part, 5 MiB."""
    settings = S3Settings.from_env({**s3.env, "KSERVE_PREDICTOR_MULTIPART_THRESHOLD": str(5 * MiB)})
    assert settings.multipart_threshold == 5 * MiB
    return S3Store(bucket, settings)


def test_a_copy_above_the_threshold_goes_part_by_part(s3: S3Server, bucket: str) -> None:
    data = bytes(range(256)) * (11 * MiB // 256)  # 11 MiB: parts of 5, 5 and 1 MiB
    s3.client().put_object(Bucket=bucket, Key="big", Body=data)
    store = part_store(s3, bucket)
    (source,) = store.list_objects("big")
    store.copy(source, "copy")
    head = s3.client().head_object(Bucket=bucket, Key="copy")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts
    assert s3.client().get_object(Bucket=bucket, Key="copy")["Body"].read() == data

    # below the default threshold (64 MiB) the same object is one CopyObject
    assert S3Settings.from_env(s3.env).multipart_threshold == 64 * MiB
    S3Store(bucket, S3Settings.from_env(s3.env)).copy(source, "single")
    assert "-" not in s3.client().head_object(Bucket=bucket, Key="single")["ETag"]


def test_the_parts_are_copied_concurrently_and_bounded(
    s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.s3.models import S3Backend

    copy_part = S3Backend.upload_part_copy
    lock, running, peak = threading.Lock(), [0], [0]

    def slow_copy_part(self: Any, *args: Any, **kwargs: Any) -> Any:  # in the server's threads
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.3)
            return copy_part(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(S3Backend, "upload_part_copy", slow_copy_part)
    parts = PART_CONCURRENCY + 4
    data = bytes(range(256)) * (parts * 5 * MiB // 256)
    s3.client().put_object(Bucket=bucket, Key="big", Body=data)
    store = part_store(s3, bucket)
    (source,) = store.list_objects("big")
    store.copy(source, "copy")
    assert (
        s3.client().head_object(Bucket=bucket, Key="copy")["ETag"].strip('"').endswith(f"-{parts}")
    )
    # several parts were in the server at once, never more than the store's workers
    assert 2 <= peak[0] <= PART_CONCURRENCY


def copy_requests(recording: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The headers (lower-cased names) of the CopyObject and UploadPartCopy requests."""
    found = []
    for request in recording:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        if "x-amz-copy-source" in headers:
            found.append(headers)
    return found


def test_every_copy_is_of_the_listed_object_and_sends_no_head(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # moto writes its recording to the working directory
    client = s3.client()
    client.put_object(Bucket=bucket, Key="big", Body=b"x" * (11 * MiB))
    client.put_object(Bucket=bucket, Key="small", Body=b"small")
    store = part_store(s3, bucket)
    listed = {o.key: o for o in store.list_objects("")}

    recorder = S3Recording(s3.endpoint)
    recorder.start()
    store.copy(listed["big"], "big-copy")
    store.copy(listed["small"], "small-copy")
    recording = recorder.stop()

    copies = copy_requests(recording)
    parts = [h for h in copies if "x-amz-copy-source-range" in h]
    assert len(parts) == 3 and len(copies) == 4  # three UploadPartCopy, one CopyObject
    for headers in copies:
        source = "big" if headers["x-amz-copy-source"].endswith("/big") else "small"
        assert headers.get("x-amz-copy-source-if-match") == f'"{listed[source].etag}"', headers
    # the listed size is the copy's size: no HEAD request for it
    assert [r["url"] for r in recording if r["method"] == "HEAD"] == []


def precondition_failed() -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "PreconditionFailed",
                "Message": "At least one of the pre-conditions you specified did not hold",
            },
            "ResponseMetadata": {"HTTPStatusCode": 412},
        },
        "UploadPartCopy",
    )


def test_a_source_replaced_during_the_copy_fails_clearly_and_is_not_retried() -> None:
    from s3transfer.exceptions import S3CopyFailedError

    direct = precondition_failed()  # CopyObject's answer
    try:  # a part's answer, as s3transfer's CopyPartTask re-raises it
        try:
            raise direct
        except ClientError:
            raise S3CopyFailedError("did not match expected ETag")  # noqa: B904
    except S3CopyFailedError as e:
        wrapped = e
    assert wrapped.__context__ is direct
    for error in (direct, wrapped):
        assert not _transient(error)
        message = str(s3_error("copy", "s3://b/k", "http://minio:9000", error))
        assert message == (
            "s3://b/k changed while it was being copied (its ETag is no longer the one listed); "
            "run again"
        )
        assert isinstance(s3_error("copy", "s3://b/k", "e", error), StoreError)


@pytest.mark.parametrize("value", ["1000", "5MiB", "-1", str(5 * 1024**3 + 1)])
def test_the_threshold_is_between_the_smallest_part_and_the_largest_copy(value: str) -> None:
    with pytest.raises(UsageError, match="KSERVE_PREDICTOR_MULTIPART_THRESHOLD"):
        S3Settings.from_env({"KSERVE_PREDICTOR_MULTIPART_THRESHOLD": value})
