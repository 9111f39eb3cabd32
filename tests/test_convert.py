"""Conversion against a real S3 server: layouts proven by loading them as the runtimes do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TESTS, S3Server

from kserve_predictor.convert import convert
from kserve_predictor.detect import detect
from kserve_predictor.errors import PredictorMismatchError
from kserve_predictor.modelurl import resolve
from kserve_predictor.settings import S3Settings

SETOSA, VIRGINICA, VERSICOLOR = 0, 2, 1


def download(s3: S3Server, url: str, to: Path) -> Path:
    bucket, _, prefix = url[len("s3://") :].partition("/")
    client = s3.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = to / item["Key"][len(prefix) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, item["Key"], str(target))
    return to


def load_like_runtime(engine: str, folder: Path) -> dict:
    done = subprocess.run(
        [sys.executable, str(TESTS / "runtime_loaders.py"), engine, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def etags(s3: S3Server, url: str) -> dict[str, str]:
    bucket, _, prefix = url[len("s3://") :].partition("/")
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


def run_conversion(url: str, predictor: str = "auto", name: str = "iris"):  # type: ignore[no-untyped-def]
    location = resolve(url, S3Settings.from_env())
    d = detect(location, predictor)
    return convert(location, d.info, d.require_engine(), name), location


CASES = [
    # zoo model, predictor, engine folder, expected layout
    ("sklearn_pickle", "auto", "sklearn", {"model.pkl"}),
    ("xgboost", "auto", "xgboost", {"model.ubj"}),
    ("lightgbm", "auto", "lightgbm", {"model.bst"}),
    ("onnx", "auto", "triton", {"iris/config.pbtxt", "iris/1/model.onnx"}),
    ("tf_module", "auto", "tensorflow", {"1/saved_model.pb", "1/variables/variables.index"}),
    ("tf_legacy_tfmodel", "auto", "tensorflow", {"1/saved_model.pb"}),
    (
        "keras_exported",
        "auto",
        "triton",
        {"iris/config.pbtxt", "iris/1/model.savedmodel/saved_model.pb"},
    ),
    ("keras_legacy_data_model", "tensorflow", "tensorflow", {"1/saved_model.pb"}),
    ("tf_module", "triton", "triton", {"iris/1/model.savedmodel/saved_model.pb"}),
    ("pyfunc", "auto", "mlflow", {"MLmodel", "python_model.pkl"}),
]


@pytest.mark.parametrize(
    ("name", "predictor", "engine", "layout"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES]
)
def test_conversion_loads_in_its_runtime(
    s3: S3Server, s3_model, tmp_path: Path, name: str, predictor: str, engine: str, layout: set[str]
) -> None:
    url = s3_model(name)
    before = etags(s3, url)
    result, _ = run_conversion(url, predictor)
    assert result.engine == engine
    assert result.location == f"{url}/kserve/{engine}/"
    assert layout <= set(result.copied) | set(result.written)

    loaded = load_like_runtime(engine, download(s3, result.location, tmp_path / "layout"))
    predictions = loaded["predictions"]
    if name in ("tf_module", "tf_legacy_tfmodel"):
        assert predictions[0] == pytest.approx([10.2, 7.0, 2.8, 0.4])  # the model doubles its input
    elif name == "pyfunc":
        assert predictions == pytest.approx([10.2, 17.2, 14.6])  # row sums
    elif name.startswith("keras"):
        assert len(predictions) == 3 and all(
            len(p) == 3 and sum(p) == pytest.approx(1, abs=1e-4) for p in predictions
        )
    else:
        assert predictions == [SETOSA, VIRGINICA, VERSICOLOR]
    if engine == "triton" and name == "onnx":
        config = loaded["config"]
        assert config["platform"] == "onnxruntime_onnx"
        assert [i["name"] for i in config["input"]] == ["X"]
        assert config["input"][0]["dims"] == ["-1", "4"]
        assert [o["name"] for o in config["output"]] == ["label", "probabilities"]

    # Source artifacts untouched; a second run copies nothing.
    after = etags(s3, url)
    assert {k: v for k, v in after.items() if "/kserve/" not in k} == before
    again, _ = run_conversion(url, predictor)
    assert not again.changed and sorted(again.skipped) == sorted(result.copied + result.written)


def test_conversion_is_server_side_copy(s3: S3Server, s3_model) -> None:
    """No model byte passes through the step: model files are only ever CopyObject sources."""
    url = s3_model("sklearn_pickle")
    location = resolve(url, S3Settings.from_env())
    calls: list[tuple[str, str]] = []
    ranged: list[tuple[str, int]] = []

    def record(params, model, **_):  # type: ignore[no-untyped-def]
        calls.append((model.name, params.get("Key", "")))
        if model.name == "GetObject" and params.get("Range"):  # the compatibility check's head
            start, end = params["Range"].removeprefix("bytes=").split("-")
            ranged.append((params["Key"], int(end) - int(start) + 1))

    location.store._client.meta.events.register("provide-client-params.s3.*", record)  # type: ignore[attr-defined]
    d = detect(location)
    convert(location, d.info, d.require_engine(), "iris")
    heads = {key for key, length in ranged if length <= 1024 * 1024}
    gets = [key for op, key in calls if op == "GetObject" and key not in heads]
    assert gets and all(
        key.endswith(("MLmodel", "requirements.txt", "python_env.yaml", ".json")) for key in gets
    )
    assert ("CopyObject", location.key("kserve/sklearn/model.pkl")) in calls
    assert not any(op in ("PutObject", "UploadPart") and "model.pkl" in key for op, key in calls)


def test_changed_model_recopies_and_removes_stale_files(
    s3: S3Server, s3_model, bucket: str
) -> None:
    url = s3_model("onnx")
    _, location = run_conversion(url, name="iris")
    # The model is re-logged at the same place with different bytes; the name changes too.
    key = location.key("model.onnx")
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.client().put_object(Bucket=bucket, Key=key, Body=body + b"\0")
    second, _ = run_conversion(url, name="flowers")
    assert second.copied == ["flowers/1/model.onnx"] and second.written == ["flowers/config.pbtxt"]
    assert sorted(second.deleted) == ["iris/1/model.onnx", "iris/config.pbtxt"]
    listed = etags(s3, f"{url}/kserve/triton")
    assert not any("/iris/" in k for k in listed)


def test_deleted_converted_file_is_restored(s3: S3Server, s3_model, bucket: str) -> None:
    url = s3_model("tf_module")
    first, location = run_conversion(url)
    s3.client().delete_object(Bucket=bucket, Key=location.key("kserve/tensorflow/1/saved_model.pb"))
    second, _ = run_conversion(url)
    assert second.copied == ["1/saved_model.pb"]
    assert len(second.skipped) == len(first.copied) - 1


def test_interrupted_conversion_never_looks_complete(s3: S3Server, s3_model, bucket: str) -> None:
    """A run that dies after some copies leaves no record; the next run finishes the job."""
    url = s3_model("tf_module")
    location = resolve(url, S3Settings.from_env())
    d = detect(location)
    engine = d.require_engine()
    store = location.store
    real_copy = store.copy
    copies = 0

    def dying_copy(source, dest_key):  # type: ignore[no-untyped-def]
        nonlocal copies
        copies += 1
        if copies == 3:
            raise KeyboardInterrupt  # the pod is killed mid-conversion
        real_copy(source, dest_key)

    store.copy = dying_copy  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        convert(location, d.info, engine, "iris")
    record = location.key("kserve/.tensorflow.json")
    assert "Contents" not in s3.client().list_objects_v2(Bucket=bucket, Prefix=record)
    store.copy = real_copy  # type: ignore[method-assign]
    resumed, _ = run_conversion(url)
    assert (
        len(resumed.copied) == len(d.info.model_files()) - 2
    )  # the two finished copies are reused
    assert not run_conversion(url)[0].changed


def test_mismatch_writes_nothing(s3: S3Server, s3_model, bucket: str) -> None:
    url = s3_model("sklearn_skops")
    before = etags(s3, url)
    with pytest.raises(PredictorMismatchError):
        run_conversion(url)
    assert etags(s3, url) == before


def test_local_model_converts_in_place(zoo: Path, tmp_path: Path) -> None:
    import shutil

    folder = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "model")
    result, _ = run_conversion(str(folder))
    assert result.location == (folder / "kserve" / "sklearn").as_uri() + "/"
    assert load_like_runtime("sklearn", folder / "kserve" / "sklearn")["predictions"] == [
        SETOSA,
        VIRGINICA,
        VERSICOLOR,
    ]
    assert not run_conversion(folder.as_uri())[0].changed
