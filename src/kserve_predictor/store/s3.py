"""An S3 (or MinIO) bucket as an artifact store, through boto3.

Credentials and endpoint follow MLflow's conventions: ``MLFLOW_S3_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``. Whether TLS is used and verified follows the
endpoint's scheme; ``verify_tls=False`` is the explicit opt-out for self-signed endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import KservePredictorError, StoreError
from . import ObjectInfo

if TYPE_CHECKING:
    from ..settings import S3Settings

# Objects up to this size are copied with one CopyObject; larger ones with a multipart
# UploadPartCopy (CopyObject's own limit is 5 GiB). Either way the bytes stay in the server.
SINGLE_COPY_LIMIT = 5 * 1024**3
_PART_SIZE = 512 * 1024**2


class S3Store:
    """Objects of one bucket; keys are relative to the bucket."""

    def __init__(self, bucket: str, settings: S3Settings) -> None:
        import boto3  # deferred: boto3 takes ~0.3 s to import
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url or None,
            aws_access_key_id=settings.access_key_id or None,
            aws_secret_access_key=settings.secret_access_key or None,
            region_name=settings.region or "us-east-1",
            verify=settings.verify_tls,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": "path"},
            ),
        )
        self._transfer = TransferConfig(
            multipart_threshold=SINGLE_COPY_LIMIT, multipart_chunksize=_PART_SIZE
        )
        self._endpoint = settings.endpoint_url or "AWS S3"

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _fail(self, action: str, key: str, error: Exception) -> KservePredictorError:
        return s3_error(action, self.describe(key), self._endpoint, error)

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        found = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(ObjectInfo(item["Key"], item["Size"], item["ETag"].strip('"')))
        except Exception as e:
            raise self._fail("list", prefix, e) from e
        return sorted(found, key=lambda o: o.key)

    def read(self, key: str, max_bytes: int) -> bytes | None:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
        except Exception as e:
            if _error_code(e) in ("NoSuchKey", "404"):
                return None
            raise self._fail("read", key, e) from e
        if answer["ContentLength"] > max_bytes:
            answer["Body"].close()
            raise StoreError(
                f"{self.describe(key)} is larger than {max_bytes} bytes; not a metadata file"
            )
        data: bytes = answer["Body"].read()
        return data

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            answer = self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={max(start, 0)}-{start + length - 1}"
            )
        except Exception as e:
            raise self._fail("read", key, e) from e
        data: bytes = answer["Body"].read()
        return data[:length]

    def write(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except Exception as e:
            raise self._fail("write", key, e) from e

    def copy(self, source: ObjectInfo, dest_key: str) -> None:
        # boto3's managed copy: CopyObject below the threshold, UploadPartCopy above it.
        try:
            self._client.copy(
                {"Bucket": self.bucket, "Key": source.key},
                self.bucket,
                dest_key,
                Config=self._transfer,
            )
        except Exception as e:
            raise self._fail("copy", source.key, e) from e

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
            except Exception as e:
                raise self._fail("delete", keys[start], e) from e

    def download(self, source: ObjectInfo, path: Path) -> None:
        try:
            self._client.download_file(self.bucket, source.key, str(path))
        except Exception as e:
            raise self._fail("download", source.key, e) from e

    def check_bucket(self) -> None:
        """Fail early with a clear message if the bucket is missing or not readable."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            raise self._fail("open bucket", "", e) from e


def _error_code(error: Exception) -> str:
    response: Any = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def s3_error(action: str, where: str, endpoint: str, error: Exception) -> KservePredictorError:
    """Translate a boto3/botocore exception into a StoreError that says what to do."""
    from botocore.exceptions import ConnectionError as TransportError
    from botocore.exceptions import HTTPClientError, NoCredentialsError, SSLError

    from ..errors import StoreAccessError

    code = _error_code(error)
    if isinstance(error, NoCredentialsError):
        return StoreAccessError(
            f"cannot {action} {where}: no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return StoreAccessError(
            f"cannot {action} {where}: access denied ({code}); check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY and the bucket policy"
        )
    if code in ("NoSuchBucket",) or (code == "404" and action == "open bucket"):
        return StoreAccessError(
            f"bucket of {where} does not exist at {endpoint}; check the model URL and MLFLOW_S3_ENDPOINT_URL"
        )
    if isinstance(error, SSLError):
        return StoreError(
            f"cannot {action} {where}: TLS verification of {endpoint} failed; fix the certificate "
            "or pass --no-verify-tls (KSERVE_PREDICTOR_S3_VERIFY_TLS=false)"
        )
    if isinstance(error, (TransportError, HTTPClientError)):  # refused, dropped, timed out
        return StoreError(
            f"cannot {action} {where}: S3 endpoint {endpoint} is unreachable "
            f"({type(error).__name__}); check MLFLOW_S3_ENDPOINT_URL and that the server is up"
        )
    return StoreError(f"cannot {action} {where} at {endpoint}: {code or type(error).__name__}")
