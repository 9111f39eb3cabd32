"""kserve-predictor-runtime, started exactly as deploy/kserve-predictor-mlflow.yaml's container
spec says, on model folders laid out as KServe's storage initializer lays them out: its V1 and
V2 answers are mlflow.pyfunc's; the model's own requirements are installed from a wheelhouse;
a model it cannot serve exits non-zero with the cause in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from runtime_process import (
    WHEELHOUSE,
    RuntimeExited,
    manifest,
    pod_command,
    start,
    storage_initializer_copy,
)

NAME = "iris"
ROW = [5.1, 3.5, 1.4, 0.2]

pytestmark = pytest.mark.skipif(
    not (WHEELHOUSE / "roman-4.2-py3-none-any.whl").is_file(),
    reason="no .wheelhouse/roman-4.2-py3-none-any.whl: run scripts/test.sh (it builds it)",
)


def test_the_wheelhouse_package_is_not_in_the_test_environment() -> None:
    """Otherwise the install test would pass without installing anything."""
    from importlib.util import find_spec

    assert find_spec("roman") is None


# --- reference: mlflow.pyfunc itself, in its own process -------------------------------------

REFERENCE = """
import json, sys
import mlflow.pyfunc, numpy as np, pandas as pd
folder, example, params = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
model = mlflow.pyfunc.load_model(folder)
schema = model.metadata.get_input_schema()
if schema is not None and schema.is_tensor_spec():
    data = np.asarray(example, dtype=schema.numpy_types()[0])
else:
    data = pd.DataFrame(example["data"], columns=example["columns"])
result = model.predict(data, params=params or None)
if hasattr(result, "to_numpy"):
    result = result.to_numpy()
print(json.dumps(np.asarray(result).tolist()))
"""


def reference(folder: Path, example: Any, params: dict[str, Any] | None, path: str = "") -> Any:
    """mlflow.pyfunc.load_model(folder).predict(example) in a fresh interpreter (TensorFlow and
    the installed requirements stay out of the test process)."""
    env = {**os.environ, "PYTHONPATH": path} if path else None
    done = subprocess.run(
        [sys.executable, "-c", REFERENCE, str(folder), json.dumps(example), json.dumps(params)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def requests_for(example: Any, params: dict[str, Any] | None) -> tuple[dict, dict]:  # type: ignore[type-arg]
    """The same rows as a V1 and a V2 request: records for named columns, else a tensor."""
    if isinstance(example, dict):  # pandas split orient
        columns, rows = example["columns"], example["data"]
        v1: dict[str, Any] = {"instances": [dict(zip(columns, row, strict=True)) for row in rows]}
        inputs = [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": [r[i] for r in rows]}
            for i, c in enumerate(columns)
        ]
    else:
        v1 = {"instances": example}
        flat = [v for row in example for v in row]
        inputs = [
            {
                "name": "input-0",
                "shape": [len(example), len(example[0])],
                "datatype": "FP32",
                "data": flat,
            }
        ]
    v2: dict[str, Any] = {"inputs": inputs}
    if params:
        v1["params"] = params
        v2["parameters"] = params
    return v1, v2


def flat(value: Any) -> list[Any]:
    return [v for item in value for v in flat(item)] if isinstance(value, list) else [value]


def approx(value: Any) -> Any:
    if isinstance(value, list):
        return [approx(v) for v in value]
    return pytest.approx(value, rel=1e-5) if isinstance(value, float) else value


@pytest.fixture
def pod(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start the runtime on a copy of ``source`` as a pod would; stopped after the test."""
    running = []

    def run(source: Path, volumes: Path | None = None, runtime=None, **env: str):  # type: ignore[no-untyped-def]
        folder = storage_initializer_copy(source, tmp_path / f"models-{len(running)}")
        volumes = volumes or tmp_path / f"volumes-{len(running)}"
        command = pod_command(runtime or manifest(), NAME, folder, volumes, **env)
        process = start(command, tmp_path / f"runtime-{len(running)}.log")
        running.append(process)
        return process, folder, volumes

    yield run
    for process in running:
        process.stop()


MODELS = [
    ("zoo", "sklearn_skops", None),
    ("zoo", "keras_native", None),
    ("zoo", "pyfunc", None),  # a custom pyfunc with its code in code/
    ("runtime_zoo", "sklearn_code_paths", None),
    ("runtime_zoo", "pyfunc_list", {"scale": 2.0}),  # a list answer, and an MLflow param
    ("runtime_zoo", "pyfunc_roman", None),  # needs roman, installed from the wheelhouse
]


@pytest.mark.slow
@pytest.mark.parametrize(("zoo_name", "model", "params"), MODELS)
def test_v1_and_v2_answers_are_mlflow_pyfuncs(
    request: pytest.FixtureRequest,
    pod,
    zoo_name: str,
    model: str,
    params: dict | None,  # type: ignore[type-arg]
) -> None:
    source = request.getfixturevalue(zoo_name) / model
    example = json.loads((source / "input_example.json").read_text())
    running, folder, volumes = pod(source)
    installed = sorted((volumes / "packages").glob("*/lib/python*/site-packages"))
    if model == "pyfunc_roman":
        assert len(installed) == 1 and (installed[0] / "roman.py").is_file()
        assert "installing 1 requirement(s)" in running.log.read_text()
    else:  # the image (this environment) satisfies the zoo's models: nothing installed
        assert installed == []
    expected = reference(folder, example, params, str(installed[0]) if installed else "")

    v1, v2 = requests_for(example, params)
    answer = requests.post(f"{running.url}/v1/models/{NAME}:predict", json=v1, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": approx(expected)}
    answer = requests.post(f"{running.url}/v2/models/{NAME}/infer", json=v2, timeout=60)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["data"] == approx(flat(expected))
    assert output["shape"][0] == len(expected)


@pytest.mark.slow
def test_health_readiness_binding_and_schema_enforcement(pod, zoo: Path) -> None:
    import psutil

    running, _, _ = pod(zoo / "sklearn_skops")
    assert requests.get(f"{running.url}/", timeout=5).status_code == 200  # KServe's liveness
    assert requests.get(f"{running.url}/v2/health/live", timeout=5).status_code == 200
    assert requests.get(f"{running.url}/v2/models/{NAME}/ready", timeout=5).status_code == 200
    assert requests.get(f"{running.url}/v1/models/{NAME}", timeout=5).json() == {
        "name": NAME,
        "ready": True,
    }
    port = int(running.url.rsplit(":", 1)[1])
    listening = [
        c.laddr
        for c in psutil.Process(running.process.pid).connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    assert [a.ip for a in listening] == [
        "0.0.0.0"
    ]  # every interface of the pod, as KServe's servers
    # MLflow's signature enforcement: three columns for a four-column model is refused
    answer = requests.post(
        f"{running.url}/v1/models/{NAME}:predict", json={"instances": [[1.0, 2.0, 3.0]]}, timeout=30
    )
    assert answer.status_code >= 400
    assert "missing inputs" in answer.text


def test_a_pod_of_the_manifest_runs_one_worker_as_its_cpu_limit_says(pod, zoo: Path) -> None:
    """deploy/kserve-predictor-mlflow.yaml limits the container to 1 CPU: kubelet makes that the
    cgroup's quota, usable_cpus reads it, and KServe runs one worker, whatever the node's CPU
    count."""
    running, _, _ = pod(zoo / "sklearn_skops")
    answer = requests.post(
        f"{running.url}/v1/models/{NAME}:predict", json={"instances": [ROW]}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert "Starting uvicorn with 1 workers" in running.log.read_text()


def test_kserve_workers_default_to_the_usable_cpus_and_each_answers(pod, zoo: Path) -> None:
    """KServe's --workers spawns processes that unpickle the model (each loads its own); the
    default is one per CPU this process may use (in a pod: its CPU limit)."""
    import psutil

    from kserve_predictor.modelserver.workers import usable_cpus

    # The manifest's limit is 1 CPU, so its pods run one process; an operator who raises the
    # limit to this machine's CPUs gets one worker per CPU.
    runtime = manifest()
    runtime["spec"]["containers"][0]["resources"]["limits"]["cpu"] = str(usable_cpus())
    running, _, _ = pod(zoo / "sklearn_skops", runtime=runtime)  # no --workers, as the pod
    workers = usable_cpus()
    for _ in range(20):  # fresh connections, spread by the kernel over the workers
        answer = requests.post(
            f"{running.url}/v1/models/{NAME}:predict", json={"instances": [ROW]}, timeout=60
        )
        assert answer.status_code == 200, answer.text
    log = running.log.read_text()
    if workers == 1:  # kserve logs it for one process too (kserve/protocol/rest/server.py)
        assert "Starting uvicorn with 1 workers" in log
        return
    assert f"Starting uvicorn with {workers} workers" in log
    # KServe kills and replaces a child that has not answered its ping within 5 s (on a busy
    # machine, importing kserve alone can take that long): wait for the set to settle.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = psutil.Process(running.process.pid).children()
        serving = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        if len(serving) == workers:
            break
        time.sleep(0.5)
    assert len(serving) == workers, running.log.read_text()[-2000:]


# --- failures: one line naming the cause, non-zero exit ---------------------------------------


def exits(source: Path, tmp_path: Path, **env: str) -> RuntimeExited:
    folder = storage_initializer_copy(source, tmp_path / "model")
    command = pod_command(manifest(), NAME, folder, tmp_path / "volumes", **env)
    with pytest.raises(RuntimeExited) as caught:
        running = start(command, tmp_path / "runtime.log")
        running.stop()
    assert caught.value.code != 0
    assert "Traceback" not in caught.value.output
    return caught.value


def test_a_model_that_cannot_load_exits_with_the_cause(zoo: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    storage_initializer_copy(zoo / "pyfunc", source)
    (source / "python_model.pkl").write_bytes(b"this is not a pickle")
    error = exits(source, tmp_path)
    assert str(error).startswith("error: pyfunc runtime cannot load")
    assert str(error).endswith("UnpicklingError: could not find MARK")


def test_a_folder_without_mlmodel_exits_with_the_cause(zoo: Path, tmp_path: Path) -> None:
    error = exits(zoo / "broken_no_mlmodel", tmp_path)
    assert str(error).startswith("error: no MLmodel in ")


def test_a_missing_requirement_is_named_when_installing_is_off(
    runtime_zoo: Path, tmp_path: Path
) -> None:
    error = exits(runtime_zoo / "pyfunc_roman", tmp_path, KSERVE_PREDICTOR_INSTALL="never")
    assert "roman==4.2 (it is not in the image)" in str(error)
    assert "KSERVE_PREDICTOR_INSTALL=never" in str(error)


def test_a_requirement_pip_cannot_find_is_named(runtime_zoo: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    storage_initializer_copy(runtime_zoo / "pyfunc_roman", source)
    text = (source / "requirements.txt").read_text().replace("roman==4.2", "roman==99.0")
    (source / "requirements.txt").write_text(text)
    error = exits(source, tmp_path)
    assert "roman==99.0" in str(error) and "PIP_FIND_LINKS" in str(error)
    assert not list((tmp_path / "volumes" / "packages").glob("*/.complete"))


def test_a_python_version_the_image_cannot_match_is_refused(zoo: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    storage_initializer_copy(zoo / "pyfunc", source)
    env_file = source / "python_env.yaml"
    env_file.write_text(
        yaml.safe_dump({**yaml.safe_load(env_file.read_text()), "python": "3.9.13"})
    )
    error = exits(source, tmp_path)
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"saved with Python 3.9.13 and this runtime image runs Python {here}" in str(error)


def test_an_unknown_install_mode_is_refused(zoo: Path, tmp_path: Path) -> None:
    error = exits(zoo / "pyfunc", tmp_path, KSERVE_PREDICTOR_INSTALL="sometimes")
    assert "KSERVE_PREDICTOR_INSTALL='sometimes' is not one of auto, never, always" in str(error)


# --- the install prefix: cached by digest, one install for concurrent replicas ----------------

PREPARE = """
import logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(message)s")
from kserve_predictor.runtime_image.requirements import prepare
print(prepare(Path(sys.argv[1])))
import roman
"""


def _prepare(folder: Path, packages: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIP_")},
        "KSERVE_PREDICTOR_PACKAGES_DIR": str(packages),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
    }
    return subprocess.Popen(
        [sys.executable, "-c", PREPARE, str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_concurrent_replicas_install_once_and_restarts_reuse_it(
    runtime_zoo: Path, tmp_path: Path
) -> None:
    folder = storage_initializer_copy(runtime_zoo / "pyfunc_roman", tmp_path / "model")
    packages = tmp_path / "shared-volume"
    replicas = [_prepare(folder, packages) for _ in range(3)]
    outputs = [p.communicate(timeout=180)[0] for p in replicas]
    assert [p.returncode for p in replicas] == [0, 0, 0], outputs
    assert sum("installing 1 requirement(s)" in out for out in outputs) == 1, outputs
    assert sum("by another replica" in out for out in outputs) == 2, outputs
    (prefix,) = [p.parent for p in packages.glob("*/.complete")]
    assert (prefix / ".complete").read_text() == "roman==4.2\n"

    restart = _prepare(folder, packages)
    out = restart.communicate(timeout=180)[0]
    assert restart.returncode == 0 and "already installed in" in out, out
