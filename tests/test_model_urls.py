"""Model URLs: S3, local paths, file://, and models:/ / runs:/ through a real MLflow tracking store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import S3Server

from kserve_predictor.choice.detect import detect
from kserve_predictor.errors import ModelFormatError, ModelUrlError, StoreAccessError, StoreError
from kserve_predictor.model.urls import resolve
from kserve_predictor.settings.groups import S3Settings


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("gs://bucket/model", "unsupported scheme 'gs'"),
        ("http://example.com/model", "unsupported scheme 'http'"),
        ("s3://", "no valid bucket"),
        ("s3://Bad_Bucket!/x", "no valid bucket"),
        ("s3://bucket", "no model folder"),
        ("s3://bucket/", "no model folder"),
        ("file://otherhost/model", "remote host"),
        ("/does/not/exist", "is not a folder"),
        ("models:/iris/1", "MLFLOW_TRACKING_URI"),
        ("runs:/0123/model", "MLFLOW_TRACKING_URI"),
    ],
)
def test_bad_urls_say_what_is_accepted(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ModelUrlError, match=message):
        resolve(url, S3Settings())


def test_local_path_and_file_url_are_the_same_model(zoo: Path) -> None:
    by_path = resolve(str(zoo / "onnx"), S3Settings())
    by_url = resolve((zoo / "onnx").as_uri(), S3Settings())
    assert by_path.url == by_url.url == (zoo / "onnx").as_uri()
    assert detect(by_url).info.format == "onnx"


def test_s3_url_reads_the_model(s3: S3Server, s3_model) -> None:
    url = s3_model("xgboost")
    d = detect(resolve(url + "/", S3Settings.from_env()))
    assert d.info.url == url and d.engine is not None and d.engine.name == "xgboost"


def test_missing_bucket_and_prefix(s3: S3Server, bucket: str) -> None:
    with pytest.raises(StoreAccessError, match="does not exist"):
        detect(resolve("s3://no-such-bucket-here/model", S3Settings.from_env()))
    with pytest.raises(ModelFormatError, match="nothing is stored there"):
        detect(resolve(f"s3://{bucket}/no/model/here", S3Settings.from_env()))


def test_unreachable_endpoint_is_an_external_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import free_port

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x" * 8)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y" * 8)
    monkeypatch.setenv("KSERVE_PREDICTOR_RETRY_SECONDS", "1")  # read by every command
    settings = S3Settings.from_env()
    store = resolve("s3://bucket/model", settings).store
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"nothing answers at S3 endpoint .* connection refused"):
        store.list_objects("model/")
    assert time.monotonic() - started < 5  # a hang guard: a refused first contact is not retried


def test_endpoint_scheme_decides_tls() -> None:
    keys = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    assert not S3Settings.from_env(
        {**keys, "MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"}
    ).use_https
    assert S3Settings.from_env({**keys, "MLFLOW_S3_ENDPOINT_URL": "https://minio:9000"}).use_https
    assert S3Settings.from_env({}).verify_tls
    assert not S3Settings.from_env({"KSERVE_PREDICTOR_S3_VERIFY_TLS": "false"}).verify_tls
    with pytest.raises(Exception, match="not an http"):
        S3Settings.from_env({**keys, "MLFLOW_S3_ENDPOINT_URL": "minio:9000"})
    with pytest.raises(Exception, match="no S3 credentials"):
        S3Settings.from_env({"MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"})


def test_registry_urls_resolve_to_the_logged_model(registry, bucket: str) -> None:  # type: ignore[no-untyped-def]
    run_id, logged = registry
    for url in ("models:/iris/1", "models:/iris@champion", f"models:/{logged.model_id}"):
        location = resolve(url, S3Settings.from_env())
        assert location.url.startswith(f"s3://{bucket}/mlflow/")
        assert detect(location).engine.name == "sklearn"  # type: ignore[union-attr]
    with pytest.raises(ModelUrlError, match="not found"):
        resolve("models:/iris/7", S3Settings.from_env())
    runs = resolve(f"runs:/{run_id}/model", S3Settings.from_env())
    assert detect(runs).info.format == "sklearn"
