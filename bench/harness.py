"""The test servers, started for a benchmark: moto's S3 server in its own process (with moto's
request recorder, so S3 requests are counted on the server's side), the Kubernetes API test
server and the FuseML API test server (tests/servers) in this process, and a kubeconfig.

The KServe side is a controller that marks each new generation of an InferenceService
InProgress at once and Ready ``ready_after`` seconds later, recording the wall-clock instant of
the Ready write (``BenchController.flipped``), with the status KServe's controller writes
(tests/servers/kserve_controller.py). It loads no model: the benchmarks measure the step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
PYTHON = sys.executable
CREDS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
NAMESPACE = "fuseml-workloads"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no telemetry from the benchmarks

from conftest import S3Recording, moto_process  # noqa: E402  (tests/ is on the path from here)
from conftest import free_port as free_port  # noqa: E402  (re-exported for the benchmarks)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in its own process, recording requests; yields its endpoint."""
    with moto_process(env={**CREDS, "MOTO_ENABLE_RECORDING": "true"}) as port:
        yield f"http://127.0.0.1:{port}"


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )


def train_iris(folder: Path) -> None:
    subprocess.run(
        [PYTHON, str(ROOT / "examples" / "train_iris.py"), str(folder)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def upload(client: Any, folder: Path, bucket: str, prefix: str) -> str:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return f"s3://{bucket}/{prefix}"


@dataclass
class BenchController:
    """InProgress at once, Ready ``ready_after`` s later; ``flipped[name]`` = time.time() of
    the Ready write."""

    api: Any
    ready_after: float = 0.5
    flipped: dict[str, float] = field(default_factory=dict)
    _seen: dict[tuple[str, str], int] = field(default_factory=dict)

    def attach(self) -> BenchController:
        self.api.on_write(self._on_write)
        return self

    def _on_write(self, plural: str, namespace: str, name: str, obj: dict[str, Any] | None) -> None:
        if plural != "inferenceservices" or obj is None:
            return
        generation = int(obj["metadata"].get("generation") or 1)
        key = (namespace, name)
        if self._seen.get(key, 0) >= generation:
            return
        self._seen[key] = generation
        self.api.update_status(
            "inferenceservices",
            namespace,
            name,
            {
                "observedGeneration": generation,
                "conditions": [{"type": "Ready", "status": "Unknown", "reason": "InProgress"}],
                "modelStatus": {"transitionStatus": "InProgress"},
            },
        )
        notes = (obj["spec"]["predictor"].get("annotations") or {}).copy()
        timer = threading.Timer(self.ready_after, self._ready, (namespace, name, generation, notes))
        timer.daemon = True
        timer.start()

    def _ready(
        self, namespace: str, name: str, generation: int, annotations: dict[str, str]
    ) -> None:
        # The predictor pod first, Ready and carrying the pod template's annotations (the
        # rollout id the step waits for), as the kubelet reports it before KServe does.
        self.api.put_object(
            "pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-predictor-abc12",
                    "namespace": namespace,
                    "labels": {
                        "serving.kserve.io/inferenceservice": name,
                        "component": "predictor",
                    },
                    "annotations": annotations,
                },
                "spec": {"containers": [{"name": "kserve-container", "image": "x"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            },
        )
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            for t in ("IngressReady", "PredictorReady", "Ready")
        ]
        status = {
            "observedGeneration": generation,
            "url": f"http://{name}-{namespace}.example.com",
            "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
            "conditions": conditions,
            "modelStatus": {
                "transitionStatus": "UpToDate",
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            },
        }
        self.flipped[name] = time.time()
        self.api.update_status("inferenceservices", namespace, name, status)


@dataclass
class Servers:
    s3_endpoint: str
    s3: Any
    recorder: S3Recording
    api: Any
    controller: BenchController
    fuseml: Any
    kubeconfig: Path
    work: Path

    def step_env(self, model_url: str, **extra: str) -> dict[str, str]:
        """The environment FuseML gives the step (DESIGN.md §2), pointed at these servers."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("FUSEML_", "MLFLOW_", "AWS_"))
        }
        env.update(CREDS)
        env.update(
            {
                "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
                "FUSEML_MODEL": model_url,
                "FUSEML_PREDICTOR": "auto",
                "FUSEML_ENV_WORKFLOW_NAME": "mlflow-bench",
                "FUSEML_ENV_WORKFLOW_NAMESPACE": NAMESPACE,
                "FUSEML_SERVER_URL": self.fuseml.url,
                "FUSEML_SMOKE_TEST": "false",  # the example.com URL does not resolve
                "TASK_RESULT": "prediction-url",
                "KSERVE_PREDICTOR_RESULTS_DIR": str(self.work / "results"),
                "KSERVE_PREDICTOR_HOME": str(self.work / "home"),
                "KUBECONFIG": str(self.kubeconfig),
                "FUSEML_TIMEOUT": "60",
            }
        )
        env.update(extra)
        return env

    def k8s_requests(self, since: int = 0) -> Counter[str]:
        return Counter(
            f"{r.method} {r.path}" + (" (dry run)" if r.query.get("dryRun") else "")
            for r in self.api.requests[since:]
        )


@contextmanager
def servers(ready_after: float = 0.5) -> Iterator[Servers]:
    from conftest import seed_simulated_runtimes
    from servers.fuseml_api import FuseMLServer
    from servers.k8s_api import KubeApiServer, crd_available

    if not crd_available():
        raise SystemExit("../shared/kserve/crd is absent: the Kubernetes API test server needs it")
    work = Path(tempfile.mkdtemp(prefix="kp-bench-"))
    api = KubeApiServer(namespaces=("default", NAMESPACE))
    api.start()
    seed_simulated_runtimes(api)
    controller = BenchController(api, ready_after).attach()
    fuseml = FuseMLServer()
    fuseml.start()
    kubeconfig = api.write_kubeconfig(work / "kubeconfig", NAMESPACE)
    try:
        with moto_server() as endpoint:
            client = s3_client(endpoint)
            yield Servers(
                endpoint, client, S3Recording(endpoint), api, controller, fuseml, kubeconfig, work
            )
    finally:
        fuseml.stop()
        api.stop()
        shutil.rmtree(work, ignore_errors=True)


def stock_model(srv: Servers, bucket: str = "mlflow") -> str:
    """The iris example model, uploaded as MLflow logs it; returns its URL."""
    srv.s3.create_bucket(Bucket=bucket)
    train_iris(srv.work / "iris")
    return upload(srv.s3, srv.work / "iris", bucket, "1/models/m-bench/artifacts")
