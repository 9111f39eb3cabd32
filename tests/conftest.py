"""Shared fixtures: real MLflow models, a real S3 server on loopback, CLI runner."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zoo_cache

TESTS = Path(__file__).parent
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # never look for instance credentials off loopback
# Distinctive credentials: the secret must never show up in any output (see test_secrets).
ACCESS_KEY = "AKIATESTKSERVEPRED01"
SECRET_KEY = "s3cr3t-Zq9xV7-never-print-me"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SLOW = TESTS / "slow.txt"
"""The tests that took 2 s or more in the last measured run (docs/testing.md), one node id a
line, but those that alone reach a module (mlflow_deployments, mlflow_predict): marked ``slow``
here, so ``-m "not slow"`` (scripts/test.sh --quick) leaves them out. A renamed or new test is
not listed, so it runs in both: a stale list can only make --quick slower, never skip a test."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = {line.strip() for line in SLOW.read_text().splitlines() if line.strip()}
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)
    # The files with the most slow tests first (a stable sort: a file's own order is kept), so
    # that xdist (--dist loadfile) starts the longest files early instead of ending on them.
    per_file = Counter(node.split("::")[0] for node in slow)
    items.sort(key=lambda item: -per_file[item.nodeid.split("::")[0]])


SESSION_TMP: Path | None = None
"""This session's (this xdist worker's) base temporary folder: every home a test uses is in it."""


def ours(pid: int | str) -> bool:
    """Whether process ``pid`` was started by this test session: its KSERVE_PREDICTOR_HOME is
    under this session's temporary folder. Tests that look for processes on the machine use it
    so that another worker's or another run's processes (same app names) are never counted."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # exited, or not ours to read
        return False
    homes = [
        v.removeprefix(b"KSERVE_PREDICTOR_HOME=")
        for v in environ
        if v.startswith(b"KSERVE_PREDICTOR_HOME=")
    ]
    return SESSION_TMP is not None and any(
        Path(os.fsdecode(h)).is_relative_to(SESSION_TMP) for h in homes
    )


@pytest.fixture(scope="session", autouse=True)
def hermetic_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Local state of the whole session lives in tmp dirs: the suite never reads or changes the
    user's home (their ~/.kserve-predictor servers and names, their kubeconfig, the libraries'
    caches). Commands run with run_cli, and the model-making subprocesses, inherit this."""
    global SESSION_TMP
    SESSION_TMP = tmp_path_factory.getbasetemp()
    home = tmp_path_factory.mktemp("kserve-predictor-home")
    user = tmp_path_factory.mktemp("home")
    isolated = {
        "KSERVE_PREDICTOR_HOME": str(home),
        # What the libraries write to ~ (Keras, matplotlib, MLflow's telemetry) goes here.
        "HOME": str(user),
        "XDG_CONFIG_HOME": str(user / ".config"),
        "XDG_CACHE_HOME": str(user / ".cache"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    # No cluster unless a test names one: KUBECONFIG unset and ~/.kube/config absent (HOME is
    # the session's), so commands find no Kubernetes configuration, never the user's.
    previous = {key: os.environ.get(key) for key in [*isolated, "KUBECONFIG"]}
    os.environ.update(isolated)
    os.environ.pop("KUBECONFIG", None)
    yield home
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def zoo() -> Path:
    """The model zoo (tests/modelzoo.py), built once per content key (tests/zoo_cache.py)."""
    return zoo_cache.zoo()


@pytest.fixture(scope="session")
def runtime_zoo() -> Path:
    """The runtime tests' extra models (tests/runtime_models.py)."""
    return zoo_cache.runtime_zoo()


@dataclass
class S3Server:
    endpoint: str
    env: dict[str, str]

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto in server mode: a real S3 REST endpoint on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    yield S3Server(endpoint, env)
    server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server, with this process's environment pointing at it."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"mlflow-{uuid.uuid4().hex[:10]}"
    s3.client().create_bucket(Bucket=name)
    return name


def upload(s3: S3Server, folder: Path, bucket: str, prefix: str) -> str:
    """Upload a model folder the way MLflow logs it; returns its s3:// URL."""
    client = s3.client()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return f"s3://{bucket}/{prefix}"


@pytest.fixture
def s3_model(s3: S3Server, bucket: str, zoo: Path):  # type: ignore[no-untyped-def]
    """A function uploading a zoo model to S3 under an MLflow-like key; returns the URL."""

    def make(name: str, prefix: str | None = None) -> str:
        prefix = prefix or f"1/models/m-{uuid.uuid4().hex[:12]}/artifacts"
        return upload(s3, zoo / name, bucket, prefix)

    return make


@pytest.fixture
def registry(s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A real MLflow tracking store (SQLite) whose artifacts live in the S3 server, holding
    iris version 1 (alias champion); MLFLOW_TRACKING_URI points at it. Returns the run id and
    the logged model."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("iris", artifact_location=f"s3://{bucket}/mlflow")
    x, y = load_iris(return_X_y=True, as_frame=True)
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.sklearn.log_model(
            LogisticRegression(max_iter=300).fit(x, y),
            name="model",
            serialization_format="cloudpickle",
            registered_model_name="iris",
        )
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("iris", "champion", "1")
    return run.info.run_id, info


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliResult:
    """Run the installed CLI as a separate process, as users and FuseML do."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FUSEML_", "MLFLOW_", "AWS_"))
    }
    full_env["AWS_EC2_METADATA_DISABLED"] = "true"
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "kserve_predictor", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    OUTPUTS.append(done.stdout + done.stderr)
    return CliResult(done.returncode, done.stdout, done.stderr)


OUTPUTS: list[str] = []
"""Everything any command printed during the session, for the secret check."""


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_output() -> Iterator[None]:
    """The S3 secret never appears in anything a command printed, anywhere in the suite."""
    yield
    leaks = [text[:200] for text in OUTPUTS if SECRET_KEY in text]
    assert not leaks, f"the S3 secret leaked into {len(leaks)} outputs: {leaks[:3]}"


# --- cluster, KServe and FuseML test servers ------------------------------------------------

RUNTIME_ENGINES = {
    "kserve-sklearnserver": "sklearn",
    "kserve-xgbserver": "xgboost",
    "kserve-lgbserver": "lightgbm",
    "kserve-tensorflow-serving": "tensorflow",
    "kserve-tritonserver": "triton",
    "kserve-mlserver": "mlflow",
}


class LocalRuntimes:
    """The simulation's runtime: the layout KServe would download, served by our local model
    server (kserve.ModelServer) on loopback, so predictions really go to the URL it reports."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []  # type: ignore[type-arg]

    def __call__(
        self, runtime: str, folder: Path, name: str, isvc: dict, spec: dict | None = None
    ) -> str:  # type: ignore[type-arg]
        import requests

        if runtime not in RUNTIME_ENGINES and spec is not None:  # the project's own runtime
            return self._pod(spec, folder, name)
        port = free_port()
        log = folder.parent / f"{folder.name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "kserve_predictor.modelserver.server", "--engine", RUNTIME_ENGINES[runtime],
                 "--folder", str(folder), "--name", name, "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            if process.poll() is not None:
                lines = [line for line in log.read_text().splitlines() if line.strip()]
                raise RuntimeError(
                    (lines or ["the model server exited"])[-1].removeprefix("error: ")
                )
            try:
                if requests.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    return url
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("the model server did not become ready")

    def _pod(self, spec: dict, folder: Path, name: str) -> str:  # type: ignore[type-arg]
        """Run the ServingRuntime's container command on the downloaded folder."""
        from runtime_process import RuntimeExited, pod_command, start

        command = pod_command(spec, name, folder, folder.parent / f"{folder.name}-volumes")
        try:
            running = start(command, folder.parent / f"{folder.name}.log")
        except RuntimeExited as e:
            raise RuntimeError(str(e).removeprefix("error: ")) from None
        self.processes.append(running.process)
        return running.url

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Cluster:
    api: object
    controller: object
    kubeconfig: Path
    missing_images: set[str]


SIMULATED_TAG = "simulated"


def seed_simulated_runtimes(api: Any) -> None:
    """KServe's release ClusterServingRuntimes, stored in the API server as a real install has
    them, with the image tag ``simulated``: the simulation serves with this environment's
    libraries, which are no stock image's, so the compatibility check must call them unknown."""
    from servers.kserve_controller import load_runtimes

    for runtime in load_runtimes():
        container = runtime["spec"]["containers"][0]
        container["image"] = container["image"].rsplit(":", 1)[0] + ":" + SIMULATED_TAG
        api.put_object("clusterservingruntimes", runtime)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The Kubernetes API test server with the KServe controller simulation attached."""
    from servers.k8s_api import KubeApiServer, crd_available
    from servers.kserve_controller import KServeController

    if not crd_available():
        pytest.skip("../shared/kserve/crd/serving.kserve.io_inferenceservices.yaml is absent")
    missing: set[str] = set()
    api = KubeApiServer(namespaces=("default", "fuseml-workloads"))
    api.start()
    seed_simulated_runtimes(api)
    runtimes = LocalRuntimes()
    controller = KServeController(
        api, runtimes, image_exists=lambda image: image not in missing
    ).attach()
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", "default")
    yield Cluster(api, controller, kubeconfig, missing)
    api.stop()
    runtimes.close()
    controller.close()


@pytest.fixture
def fuseml() -> Iterator[object]:
    from servers.fuseml_api import FuseMLServer

    server = FuseMLServer()
    server.start()
    yield server
    server.stop()


def codeset(tmp_path: Path, project: str = "mlflow-project-01", name: str = "iris-codeset") -> Path:
    """A codeset working directory as FuseML mounts it."""
    folder = tmp_path / "workspace" / "source"
    (folder / ".fuseml").mkdir(parents=True)
    (folder / ".fuseml" / "_org").write_text(project)
    (folder / ".fuseml" / "_project").write_text(name)
    return folder


def step_env(
    s3: S3Server, cluster: Cluster, fuseml: Any, model_url: str, results: Path, **extra: str
) -> dict[str, str]:
    """The environment FuseML gives the step (DESIGN.md §2), pointed at the test servers."""
    env = {
        **s3.env,
        "FUSEML_MODEL": model_url,
        "FUSEML_PREDICTOR": "auto",
        "FUSEML_ENV_WORKFLOW_NAME": "mlflow-e2e",
        "FUSEML_ENV_WORKFLOW_NAMESPACE": "fuseml-workloads",
        "TASK_RESULT": "prediction-url",
        "KSERVE_PREDICTOR_RESULTS_DIR": str(results),
        "FUSEML_SERVER_URL": fuseml.url,
        "KUBECONFIG": str(cluster.kubeconfig),
        "FUSEML_TIMEOUT": "120",
    }
    env.update(extra)
    return env


class S3Recording:
    """moto's request recorder (``/moto-api/recorder``): the requests the S3 server received.
    moto appends them to ``moto_recording`` in the server process's working directory, so the
    test runs in its own (monkeypatch.chdir)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def _call(self, action: str) -> bytes:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/recorder/{action}")
        if action != "download-recording":
            request.method = "POST"
        with urllib.request.urlopen(request, timeout=10) as answer:
            data: bytes = answer.read()
        return data

    def start(self) -> None:
        self._call("reset-recording")
        self._call("start-recording")

    def stop(self) -> list[dict[str, Any]]:
        self._call("stop-recording")
        lines = self._call("download-recording").decode().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@contextmanager
def moto_process(*flags: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """moto's S3 server in its own process (for settings that must differ from the shared
    one: IAM auth, TLS); yields its port once it accepts connections."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port), *flags],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait()
