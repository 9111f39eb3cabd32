"""The embedded local runtime: for every supported format, predictions served over V1 and V2
equal ``mlflow.pyfunc.load_model(...).predict`` on the same inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from conftest import CliResult, run_cli

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]

# zoo model → (engine the local runtime serves it with, pyfunc input kind)
MODELS = {
    "sklearn_pickle": ("sklearn", "frame"),
    "sklearn_skops": ("mlflow", "frame"),
    "xgboost": ("xgboost", "frame"),
    "lightgbm": ("lightgbm", "frame"),
    "lightgbm_sklearn": ("mlflow", "frame"),
    "onnx": ("triton", "tensor"),
    "tf_module": ("tensorflow", "tensor"),
    "keras_exported": ("triton", "tensor"),
    "keras_native": ("mlflow", "tensor"),
    "pyfunc": ("mlflow", "frame"),
}
# The protocols of each engine's cluster runtime: KServe's sklearn/xgb/lgb servers speak both,
# TF Serving only V1, Triton and MLServer only V2.
PROTOCOLS = {
    "sklearn": ("v1", "v2"),
    "xgboost": ("v1", "v2"),
    "lightgbm": ("v1", "v2"),
    "tensorflow": ("v1",),
    "triton": ("v2",),
    "mlflow": ("v2",),
}


def expected_outputs(folder: Path, kind: str) -> dict[str, np.ndarray]:
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(folder))
    data: Any = (
        pd.DataFrame(ROWS, columns=COLUMNS) if kind == "frame" else np.array(ROWS, dtype=np.float32)
    )
    if folder.name == "onnx":
        data = {"X": np.array(ROWS, dtype=np.float32)}
    result = model.predict(data)
    if isinstance(result, dict):
        return {k: np.asarray(v) for k, v in result.items()}
    if isinstance(result, pd.DataFrame) and len(result.columns) > 1 and folder.name != "tf_module":
        return {str(c): result[c].to_numpy() for c in result.columns}
    return {"output-0": np.asarray(result.to_numpy() if hasattr(result, "to_numpy") else result)}


def served_v1(answer: dict[str, Any], names: list[str]) -> dict[str, np.ndarray]:
    predictions = answer["predictions"]
    if predictions and isinstance(predictions[0], dict):
        return {name: np.array([row[name] for row in predictions]) for name in names}
    return {names[0]: np.array(predictions)}


def served_v2(answer: dict[str, Any]) -> dict[str, np.ndarray]:
    return {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in answer["outputs"]}


def same(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    if len(expected) == 1 and len(got) == 1:  # a single output: names may differ
        expected = {"x": next(iter(expected.values()))}
        got = {"x": next(iter(got.values()))}
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(
            got[name].astype(float).reshape(value.shape), value.astype(float), rtol=1e-5, atol=1e-6
        )


def deploy_local(folder: Path, app: str, *flags: str, env: dict[str, str]) -> CliResult:
    return run_cli(
        "deploy", "--target", "local", "--model", str(folder), "--app-name", app, *flags, env=env
    )


@pytest.fixture
def local_home(tmp_path: Path) -> dict[str, str]:
    return {"KSERVE_PREDICTOR_HOME": str(tmp_path / "home")}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_served_predictions_equal_pyfunc(
    zoo: Path, tmp_path: Path, local_home: dict[str, str], name: str
) -> None:
    engine, kind = MODELS[name]
    folder = shutil.copytree(zoo / name, tmp_path / name)
    app = "m-" + name.replace("_", "-")
    done = deploy_local(folder, app, "--output", "json", env=local_home)
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    try:
        assert result["engine"] == engine
        base = result["prediction_url"].split("/v")[0]
        expected = expected_outputs(zoo / name, kind)
        v1_url, v2_url = f"{base}/v1/models/{app}:predict", f"{base}/v2/models/{app}/infer"
        v1 = requests.post(v1_url, json={"instances": ROWS}, timeout=60)
        if "v1" in PROTOCOLS[engine]:
            assert v1.status_code == 200, v1.text
            same(expected, served_v1(v1.json(), list(expected)))
        else:  # the cluster runtime has no V1 route
            assert v1.status_code == 404 and "/v2/models/" in v1.json()["error"]
        # Like a Triton client: the input's name and datatype from the model's metadata.
        declared = requests.get(f"{base}/v2/models/{app}", timeout=5).json()["inputs"]
        v2_name, dtype = (
            (declared[0]["name"], declared[0]["datatype"])
            if declared
            else ("input-0", "FP32" if kind == "tensor" else "FP64")
        )
        body = {
            "inputs": [
                {
                    "name": v2_name,
                    "shape": [3, 4],
                    "datatype": dtype,
                    "data": [v for row in ROWS for v in row],
                }
            ]
        }
        v2 = requests.post(v2_url, json=body, timeout=60)
        if "v2" in PROTOCOLS[engine]:
            assert v2.status_code == 200, v2.text
            same(expected, served_v2(v2.json()))
        else:
            assert v2.status_code == 404 and "/v1/models/" in v2.json()["error"]
        assert requests.get(f"{base}/v2/health/ready", timeout=5).status_code == 200
        assert requests.get(f"{base}/v1/models/{app}", timeout=5).json()["ready"] is True
    finally:
        run_cli("delete", app, env=local_home)


def test_local_deploy_lifecycle(zoo: Path, tmp_path: Path, local_home: dict[str, str]) -> None:
    folder = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "iris")
    done = deploy_local(folder, "iris", env=local_home)
    assert done.code == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/models/iris:predict")
    assert "smoke test: 3 rows answered" in done.stdout
    assert requests.post(url, json={"instances": ROWS[:1]}, timeout=30).json() == {
        "predictions": [0]
    }

    listed = run_cli("status", "--output", "json", env=local_home)
    apps = json.loads(listed.stdout)["local"]
    assert [a["name"] for a in apps] == ["iris"] and apps[0]["running"] is True
    status = run_cli("status", "iris", env=local_home)
    assert status.code == 0 and url in status.stdout

    deleted = run_cli("delete", "iris", env=local_home)
    assert deleted.code == 0 and "deleted local server iris" in deleted.stdout
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={"instances": ROWS[:1]}, timeout=5)
    assert json.loads(run_cli("status", "--output", "json", env=local_home).stdout)["local"] == []
    assert run_cli("delete", "iris", "--target", "local", env=local_home).code == 0  # already gone


def test_local_deploy_registers_with_fuseml(
    zoo: Path, tmp_path: Path, local_home: dict[str, str], fuseml
) -> None:  # type: ignore[no-untyped-def]
    folder = shutil.copytree(zoo / "xgboost", tmp_path / "boost")
    env = {**local_home, "FUSEML_SERVER_URL": fuseml.url}
    done = deploy_local(
        folder,
        "boost",
        "--no-smoke-test",
        env=env,
    )
    assert done.code == 0, done.stderr
    assert fuseml.applications["boost"]["url"] == done.stdout.strip().splitlines()[-1]
    assert run_cli("delete", "boost", env=env).code == 0
    assert "boost" not in fuseml.applications


def test_a_model_that_cannot_load_fails_with_the_cause(
    zoo: Path, tmp_path: Path, local_home: dict[str, str]
) -> None:
    folder = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "bad")
    (folder / "model.pkl").write_bytes(b"not a pickle")
    done = deploy_local(folder, "bad", env=local_home)
    assert done.code == 1
    assert (
        done.stderr.startswith("error: the local model server for bad exited:")
        and "Traceback" not in done.stderr
    )


def test_serve_prints_the_url_and_a_curl_that_works(
    zoo: Path, tmp_path: Path, local_home: dict[str, str]
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from conftest import free_port

    folder = shutil.copytree(zoo / "onnx", tmp_path / "iris")
    port = free_port()
    env = {**os.environ, **local_home}
    serve = subprocess.Popen(
        [sys.executable, "-m", "kserve_predictor", "serve", str(folder), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert serve.stdout is not None
    lines: list[str] = []
    for line in serve.stdout:
        lines.append(line.strip())
        if line.startswith("  curl"):
            break
    try:
        assert f"prediction URL: http://127.0.0.1:{port}/v2/models/iris/infer" in lines
        curl = subprocess.run(lines[-1], shell=True, capture_output=True, text=True, timeout=30)
        outputs = {o["name"]: o for o in json.loads(curl.stdout)["outputs"]}
        assert outputs["label"]["shape"] == [3]  # the model's 3-row input example
        listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        assert f"127.0.0.1:{port}" in listening and f"0.0.0.0:{port}" not in listening
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
