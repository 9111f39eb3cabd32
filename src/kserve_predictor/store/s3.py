"""An S3 (or MinIO) bucket as an artifact store, through boto3.

Credentials and endpoint follow MLflow's conventions: ``MLFLOW_S3_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``. Whether TLS is used and verified follows the
endpoint's scheme; ``verify_tls=False`` is the explicit opt-out for self-signed endpoints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kserve_predictor.errors import KservePredictorError, StoreError
from kserve_predictor.retry import Contact, RetryPolicy, unreached
from kserve_predictor.store import ObjectInfo

if TYPE_CHECKING:
    from kserve_predictor.settings.groups import S3Settings

T = TypeVar("T")
# Error codes S3 and MinIO answer when busy: worth another try, like a 5xx.
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"}
PART_CONCURRENCY = 8
"""UploadPartCopy requests in flight at once per store, whatever number of files convert copies
at once (their CopyObjects run on convert's own pool)."""


class S3Store:
    """Objects of one bucket; keys are relative to the bucket."""

    def __init__(self, bucket: str, settings: S3Settings) -> None:
        import boto3  # deferred: boto3 takes ~0.3 s to import
        from botocore.config import Config

        self.bucket = bucket
        self._policy = RetryPolicy(seconds=settings.retry_seconds)
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url or None,
            aws_access_key_id=settings.access_key_id or None,
            aws_secret_access_key=settings.secret_access_key or None,
            region_name=settings.region or "us-east-1",
            verify=settings.verify_tls,
            config=Config(
                # The product's retry policy retries (one policy for every system): botocore
                # makes one attempt per call.
                retries={"total_max_attempts": 1},
                connect_timeout=self._policy.connect_timeout,
                read_timeout=self._policy.read_timeout,
                s3={"addressing_style": "path"},
                # convert's 16 copies at once plus PART_CONCURRENCY parts; room to spare
                max_pool_connections=32,
            ),
        )
        # Objects up to the threshold are copied with one CopyObject, larger ones part by
        # part with UploadPartCopy. Either way the bytes stay in the server.
        self._threshold = settings.multipart_threshold
        self._parts: Any = None  # the TransferManager of the part copies, made on first use
        self._parts_lock = threading.Lock()
        self._endpoint = settings.endpoint_url or "AWS S3"
        # Until the endpoint has answered, a refused connection is a wrong address: no retries.
        self._contact = Contact()

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _fail(self, action: str, key: str, error: Exception) -> KservePredictorError:
        return s3_error(action, self.describe(key), self._endpoint, error)

    def _retrying(self, action: str, key: str, call: Callable[[], T]) -> T:
        """``call()`` under the retry policy; a failure leaves as our error."""
        try:
            return self._policy.call(
                f"S3 {action} {key}", lambda _timeout: call(), _transient, contact=self._contact
            )
        except Exception as e:
            raise self._fail(action, key, e) from e

    def list_objects(self, prefix: str) -> list[ObjectInfo]:

        def listing() -> list[ObjectInfo]:
            found = []
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(
                        ObjectInfo(
                            item["Key"],
                            item["Size"],
                            item["ETag"].strip('"'),
                            item["LastModified"].timestamp(),
                        )
                    )
            return found

        return sorted(self._retrying("list", prefix, listing), key=lambda o: o.key)

    def read(self, key: str, max_bytes: int) -> bytes | None:

        def fetch() -> bytes | None:
            try:
                answer = self._client.get_object(Bucket=self.bucket, Key=key)
            except Exception as e:
                if _error_code(e) in ("NoSuchKey", "404"):
                    return None
                raise
            if answer["ContentLength"] > max_bytes:
                answer["Body"].close()
                raise _TooLarge
            data: bytes = answer["Body"].read()
            return data

        try:
            return self._retrying("read", key, fetch)
        except StoreError as e:
            if isinstance(e.__cause__, _TooLarge):
                raise StoreError(
                    f"{self.describe(key)} is larger than {max_bytes} bytes; not a metadata file"
                ) from None
            raise

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
        self._retrying(
            "write", key, lambda: self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
        )

    def copy(self, source: ObjectInfo, dest_key: str) -> None:
        # Only the object that was listed is copied: its layout's digest names that ETag, so a
        # source replaced since the listing fails the copy (412) instead of being copied.
        if_match = {"CopySourceIfMatch": f'"{source.etag}"'}
        copy_source = {"Bucket": self.bucket, "Key": source.key}
        if source.size <= self._threshold:
            self._retrying(
                "copy",
                source.key,
                lambda: self._client.copy_object(
                    CopySource=copy_source, Bucket=self.bucket, Key=dest_key, **if_match
                ),
            )
            return

        def part_copy() -> None:
            # s3transfer sends a HEAD unless given both the size and the ETag (_Listed); with
            # the ETag it sends CopySourceIfMatch on every UploadPartCopy, as extra_args ask.
            future = self._part_copies().copy(
                copy_source, self.bucket, dest_key, if_match, [_Listed(source)]
            )
            future.result()

        self._retrying("copy", source.key, part_copy)

    def _part_copies(self) -> Any:
        """The store's one TransferManager: its PART_CONCURRENCY workers run the parts of all
        the large copies in flight, so concurrent file copies do not multiply connections."""
        with self._parts_lock:
            if self._parts is None:
                from s3transfer.manager import TransferConfig, TransferManager

                self._parts = TransferManager(
                    self._client,
                    TransferConfig(
                        multipart_threshold=self._threshold,
                        # Parts of the threshold's size (s3transfer has one per manager, not per
                        # copy): the workers bound parallelism; fewer, larger parts, fewer requests.
                        multipart_chunksize=self._threshold,
                        max_request_concurrency=PART_CONCURRENCY,
                    ),
                )
            return self._parts

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self._retrying(
                "delete",
                keys[start],
                lambda batch=batch: self._client.delete_objects(  # type: ignore[misc]
                    Bucket=self.bucket, Delete={"Objects": batch}
                ),
            )

    def download(self, source: ObjectInfo, path: Path) -> None:
        self._retrying(
            "download",
            source.key,
            lambda: self._client.download_file(self.bucket, source.key, str(path)),
        )

    def check_bucket(self) -> None:
        """Fail early with a clear message if the bucket is missing or not readable."""
        self._retrying("open bucket", "", lambda: self._client.head_bucket(Bucket=self.bucket))


class _TooLarge(Exception):
    """An object too large to be the metadata file asked for (not retried)."""


class _Listed:
    """A transfer subscriber giving s3transfer the listed size and ETag (no HEAD request)."""

    def __init__(self, source: ObjectInfo) -> None:
        self.source = source

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self.source.size)
        future.meta.provide_object_etag(f'"{self.source.etag}"')


def _source_changed(error: BaseException | None) -> bool:
    """A CopySourceIfMatch that failed (412): the source is no longer the listed object.
    s3transfer turns a part's 412 into S3CopyFailedError, raised while handling it."""
    for _ in range(3):  # the error, and what it was raised from or while handling
        if error is None or not isinstance(error, Exception):
            return False
        status = (getattr(error, "response", None) or {}).get("ResponseMetadata", {})
        if _error_code(error) == "PreconditionFailed" or status.get("HTTPStatusCode") == 412:
            return True
        error = error.__cause__ or error.__context__
    return False


def _transient(error: Exception) -> bool:
    """Worth another try: a dropped, refused or timed-out connection, or a busy server."""
    from botocore.exceptions import ConnectionError as TransportError
    from botocore.exceptions import HTTPClientError, SSLError

    if isinstance(error, SSLError):
        return False  # a certificate does not fix itself
    if _source_changed(error):
        return False  # a replaced source stays replaced
    if isinstance(error, (TransportError, HTTPClientError)):
        return True
    response: Any = getattr(error, "response", None) or {}
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or status == 429 or _error_code(error) in _THROTTLED


def _error_code(error: Exception) -> str:
    response: Any = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def s3_error(action: str, where: str, endpoint: str, error: Exception) -> KservePredictorError:
    """Translate a boto3/botocore exception into a StoreError that says what to do."""
    from botocore.exceptions import ConnectionError as TransportError
    from botocore.exceptions import HTTPClientError, NoCredentialsError, SSLError

    from kserve_predictor.errors import StoreAccessError

    code = _error_code(error)
    if action == "copy" and _source_changed(error):
        return StoreError(
            f"{where} changed while it was being copied (its ETag is no longer the one listed); "
            "run again"
        )
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
    reason = unreached(error)
    if reason:
        source = (
            "MLFLOW_S3_ENDPOINT_URL" if endpoint != "AWS S3" else "MLFLOW_S3_ENDPOINT_URL unset"
        )
        return StoreError(
            f"cannot {action} {where}: nothing answers at S3 endpoint {endpoint} (from {source}): "
            f"{reason}; check MLFLOW_S3_ENDPOINT_URL and that the server is up"
        )
    if isinstance(error, (TransportError, HTTPClientError)):  # dropped, timed out
        return StoreError(
            f"cannot {action} {where}: S3 endpoint {endpoint} is unreachable "
            f"({type(error).__name__}); check MLFLOW_S3_ENDPOINT_URL and that the server is up"
        )
    return StoreError(f"cannot {action} {where} at {endpoint}: {code or type(error).__name__}")
