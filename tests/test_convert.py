"""Conversion against a real S3 server: layouts proven by downloading them from the storageUri
the way KServe's storage initializer does and loading them as the runtimes do."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TESTS, S3Server
from servers.storage_initializer import download

from kserve_predictor.choice.detect import detect
from kserve_predictor.errors import PredictorMismatchError
from kserve_predictor.layouts.convert import (
    COPY_CONCURRENCY,
    KEPT_NON_EMPTY,
    convert,
    converted_prefix,
    plan_layout,
)
from kserve_predictor.model.urls import resolve
from kserve_predictor.settings.groups import S3Settings

SETOSA, VIRGINICA, VERSICOLOR = 0, 2, 1


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
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


def run_conversion(url: str, predictor: str = "auto", name: str = "iris"):  # type: ignore[no-untyped-def]
    location = resolve(url, S3Settings.from_env())
    d = detect(location, predictor)
    return convert(location, d.info, d.require_engine(), name), location


def layout_url(url: str, engine: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"{url}/kserve/{engine}-") + r"[0-9a-f]{16}/")


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
    s3: S3Server,
    s3_model,
    bucket: str,
    tmp_path: Path,
    name: str,
    predictor: str,
    engine: str,
    layout: set[str],
) -> None:
    url = s3_model(name)
    if engine == "mlflow":  # code with empty files, as MLflow copies code_paths
        model_key = url.split(bucket + "/", 1)[1]
        s3.client().put_object(Bucket=bucket, Key=f"{model_key}/code/__init__.py", Body=b"")
        s3.client().put_object(Bucket=bucket, Key=f"{model_key}/code/empty.json", Body=b"")
    before = etags(s3, url)
    result, location = run_conversion(url, predictor)
    assert result.engine == engine
    assert layout_url(url, engine).fullmatch(result.location)
    assert layout <= set(result.copied) | set(result.written)

    # What the storage initializer downloads from the storageUri is exactly the plan: no
    # sibling (the completion record beside the folder) and no missing file.
    d = detect(resolve(url, S3Settings.from_env()), predictor)
    plan = plan_layout(location, d.info, d.require_engine(), "iris")
    assert location.store.describe(plan.prefix) == result.location
    folder = tmp_path / "layout"
    assert set(download(s3.client(), result.location, folder)) == plan.files
    for relative in plan.files:
        assert (folder / relative).stat().st_size == plan.size(relative) > 0
    if engine == "mlflow":
        assert (folder / "code" / "__init__.py").read_bytes() == KEPT_NON_EMPTY
        assert result.left_out == ["code/empty.json"]

    loaded = load_like_runtime(engine, folder)
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

    # Source artifacts untouched (empty ones included); a second run copies nothing.
    after = etags(s3, url)
    assert {k: v for k, v in after.items() if "/kserve/" not in k} == before
    again, _ = run_conversion(url, predictor)
    assert again.location == result.location
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
    heads = [length for _, length in ranged]
    assert all(length <= 1024 * 1024 for length in heads)  # bounded metadata heads only
    gets = [key for op, key in calls if op == "GetObject" and key not in {k for k, _ in ranged}]
    assert gets and all(
        key.endswith(("MLmodel", "requirements.txt", "python_env.yaml", ".json")) for key in gets
    )
    prefix = converted_prefix(location, d.info, d.require_engine(), "iris")
    assert ("CopyObject", prefix + "model.pkl") in calls
    assert not any(op in ("PutObject", "UploadPart") and "model.pkl" in key for op, key in calls)


def test_unchanged_model_costs_one_listing_and_one_record_read(s3: S3Server, s3_model) -> None:
    url = s3_model("tf_module")
    run_conversion(url)
    location = resolve(url, S3Settings.from_env())
    calls: list[tuple[str, str]] = []

    def record(params, model, **_):  # type: ignore[no-untyped-def]
        calls.append((model.name, params.get("Key", "")))

    location.store._client.meta.events.register("provide-client-params.s3.*", record)  # type: ignore[attr-defined]
    d = detect(location)
    metadata_reads = [key for op, key in calls if op == "GetObject"]
    calls.clear()
    again = convert(location, d.info, d.require_engine(), "iris")
    assert not again.changed
    ops = [op for op, _ in calls]
    assert ops == ["GetObject"]  # the record; the listing is the one detection made
    assert calls[0][1].endswith(".json") and "/kserve/tensorflow-" in calls[0][1]
    assert all("/kserve/" not in key for key in metadata_reads)


def test_copies_run_concurrently_and_bounded(s3: S3Server, s3_model, bucket: str) -> None:
    url = s3_model("pyfunc")
    model_key = url.split(bucket + "/", 1)[1]
    for i in range(40):
        s3.client().put_object(Bucket=bucket, Key=f"{model_key}/extra/{i:03}.txt", Body=b"x%d" % i)
    location = resolve(url, S3Settings.from_env())
    store = location.store
    real_copy = store.copy
    lock = threading.Lock()
    in_flight = peak = 0

    def counting_copy(source, dest_key):  # type: ignore[no-untyped-def]
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        try:
            real_copy(source, dest_key)
        finally:
            with lock:
                in_flight -= 1

    store.copy = counting_copy  # type: ignore[method-assign]
    d = detect(location)
    result = convert(location, d.info, d.require_engine(), "iris")
    assert len(result.copied) > 40
    assert 1 < peak <= COPY_CONCURRENCY


def test_new_name_and_new_model_give_new_layouts_old_ones_intact(
    s3: S3Server, s3_model, bucket: str
) -> None:
    """Two Triton apps from one model, and a re-logged model: three layouts, none touched."""
    url = s3_model("onnx")
    iris, location = run_conversion(url, name="iris")
    before = etags(s3, iris.location)
    flowers, _ = run_conversion(url, name="flowers")
    assert flowers.location != iris.location
    assert flowers.copied == ["flowers/1/model.onnx"] and flowers.written == [
        "flowers/config.pbtxt"
    ]
    assert etags(s3, iris.location) == before  # app A's model folder is still there
    assert not run_conversion(url, name="iris")[0].changed

    # The model is re-logged at the same place with different bytes: a new layout.
    key = location.key("model.onnx")
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.client().put_object(Bucket=bucket, Key=key, Body=body + b"\0")
    relogged, _ = run_conversion(url, name="iris")
    assert relogged.location not in (iris.location, flowers.location)
    assert relogged.copied == ["iris/1/model.onnx"] and not relogged.deleted
    assert etags(s3, iris.location) == before


def test_deleted_converted_file_is_restored(s3: S3Server, s3_model, bucket: str) -> None:
    url = s3_model("tf_module")
    first, _ = run_conversion(url)
    prefix = first.location.split(bucket + "/", 1)[1]
    s3.client().delete_object(Bucket=bucket, Key=prefix + "1/saved_model.pb")
    second, _ = run_conversion(url)
    assert second.location == first.location
    assert second.copied == ["1/saved_model.pb"]
    assert len(second.skipped) == len(first.copied) - 1
    assert not run_conversion(url)[0].changed


def test_interrupted_conversion_never_looks_complete(s3: S3Server, s3_model, bucket: str) -> None:
    """A run that dies after some copies leaves no record; the next run finishes the job."""
    url = s3_model("tf_module")
    location = resolve(url, S3Settings.from_env())
    d = detect(location)
    engine = d.require_engine()
    store = location.store
    real_copy = store.copy
    copies = 0
    lock = threading.Lock()

    def dying_copy(source, dest_key):  # type: ignore[no-untyped-def]
        nonlocal copies
        with lock:
            copies += 1
            dies = copies == 3
        if dies:
            raise KeyboardInterrupt  # the pod is killed mid-conversion
        real_copy(source, dest_key)

    store.copy = dying_copy  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        convert(location, d.info, engine, "iris")
    prefix = converted_prefix(location, d.info, engine, "iris")
    record = prefix.rstrip("/") + ".json"
    assert "Contents" not in s3.client().list_objects_v2(Bucket=bucket, Prefix=record)
    present = etags(s3, store.describe(prefix))
    assert 0 < len(present) < len(d.info.model_files())
    store.copy = real_copy  # type: ignore[method-assign]
    resumed, _ = run_conversion(url)
    assert len(resumed.copied) == len(d.info.model_files()) - len(present)  # finished ones kept
    assert len(resumed.skipped) == len(present)
    assert not run_conversion(url)[0].changed


def test_a_file_removed_during_conversion_is_caught_before_the_record(
    s3: S3Server, s3_model, bucket: str
) -> None:
    """If something (a gc with too short a grace period) deletes files while they are being
    copied, the layout is never marked complete."""
    from kserve_predictor.errors import StoreError

    url = s3_model("tf_module")
    location = resolve(url, S3Settings.from_env())
    d = detect(location)
    engine = d.require_engine()
    prefix = converted_prefix(location, d.info, engine, "iris")
    store = location.store
    real_copy = store.copy
    lock = threading.Lock()
    done: list[str] = []

    def copy_then_lose_the_first(source, dest_key):  # type: ignore[no-untyped-def]
        real_copy(source, dest_key)
        with lock:
            done.append(dest_key)
            last = len(done) == len(d.info.model_files())
        if last:
            store.delete([done[0]])

    store.copy = copy_then_lose_the_first  # type: ignore[method-assign]
    with pytest.raises(StoreError, match="changed while it was being converted"):
        convert(location, d.info, engine, "iris")
    assert "Contents" not in s3.client().list_objects_v2(
        Bucket=bucket, Prefix=prefix.rstrip("/") + ".json"
    )


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
    layout = Path(result.location.removeprefix("file://"))
    assert layout.parent == folder / "kserve" and re.fullmatch(r"sklearn-[0-9a-f]{16}", layout.name)
    assert (folder / "kserve" / f"{layout.name}.json").is_file()  # the record, beside the folder
    assert load_like_runtime("sklearn", layout)["predictions"] == [SETOSA, VIRGINICA, VERSICOLOR]
    assert not run_conversion(folder.as_uri())[0].changed
