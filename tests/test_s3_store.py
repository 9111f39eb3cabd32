"""The S3 store against moto's S3 server: the multipart copy threshold is a setting, and a
copy above it goes part by part (UploadPartCopy) without the bytes leaving the server."""

from __future__ import annotations

import pytest
from conftest import S3Server

from kserve_predictor.errors import UsageError
from kserve_predictor.settings import S3Settings
from kserve_predictor.store.s3 import S3Store

MiB = 1024**2


def test_a_copy_above_the_threshold_goes_part_by_part(s3: S3Server, bucket: str) -> None:
    data = bytes(range(256)) * (11 * MiB // 256)  # 11 MiB: three parts of at most 5 MiB
    s3.client().put_object(Bucket=bucket, Key="big", Body=data)
    settings = S3Settings.from_env({**s3.env, "KSERVE_PREDICTOR_MULTIPART_THRESHOLD": str(5 * MiB)})
    assert settings.multipart_threshold == 5 * MiB
    store = S3Store(bucket, settings)
    (source,) = store.list_objects("big")
    store.copy(source, "copy")
    head = s3.client().head_object(Bucket=bucket, Key="copy")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts
    assert s3.client().get_object(Bucket=bucket, Key="copy")["Body"].read() == data

    # below the default threshold (5 GiB) the same object is one CopyObject
    S3Store(bucket, S3Settings.from_env(s3.env)).copy(source, "single")
    assert "-" not in s3.client().head_object(Bucket=bucket, Key="single")["ETag"]


@pytest.mark.parametrize("value", ["1000", "5MiB", "-1"])
def test_the_threshold_must_be_at_least_the_smallest_part(value: str) -> None:
    with pytest.raises(UsageError, match="KSERVE_PREDICTOR_MULTIPART_THRESHOLD"):
        S3Settings.from_env({"KSERVE_PREDICTOR_MULTIPART_THRESHOLD": value})
