"""`kserve-predictor sync` against the real parts: an MLflow tracking server (SQLite) started
here, webhooks registered through MLflow's API and delivered by MLflow itself, models in the S3
test server, the Kubernetes API test server with the KServe simulation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import OUTPUTS, Cluster, S3Server, free_port

from kserve_predictor.kserve.isvc import split, storage_uri
from kserve_predictor.sync.signature import sign

SECRET = "whsec-Zq9-never-print-this"
BODY_MARKER = "body-marker-7f3c"


@pytest.fixture
def mlflow_server(s3: S3Server, bucket: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on loopback with a SQLite store; artifacts go to the S3 server. Webhooks
    to http://127.0.0.1 are allowed (MLflow refuses private addresses and http by default)."""
    port = free_port()
    env = {**os.environ, **s3.env,
           "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
           "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
           "MLFLOW_WEBHOOK_CACHE_TTL": "1"}  # fmt: skip
    log = open(tmp_path / "mlflow.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db", "--workers", "1",
         "--no-serve-artifacts", "--default-artifact-root", f"s3://{bucket}/mlflow"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert process.poll() is None, (tmp_path / "mlflow.log").read_text()[-2000:]
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=20)
    log.close()


def log_versions(tracking: str, count: int, broken: set[int] = frozenset()) -> Any:  # type: ignore[assignment]
    """Register ``count`` versions of iris; a version in ``broken`` has a model file that
    cannot be loaded (the runtime fails, as a real one would)."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking)
    client = mlflow.MlflowClient()
    experiment = client.create_experiment(f"iris-{uuid.uuid4().hex[:6]}")
    x, y = load_iris(return_X_y=True, as_frame=True)
    for number in range(1, count + 1):
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                LogisticRegression(max_iter=100 + number).fit(x, y),
                name="model",
                serialization_format="cloudpickle",
                registered_model_name="iris",
                input_example=x.head(2),
            )
        if number in broken:
            import boto3

            source = client.get_model_version_download_uri("iris", info.registered_model_version)
            bucket, _, key = source.removeprefix("s3://").partition("/")
            boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"]).put_object(
                Bucket=bucket, Key=f"{key}/model.pkl", Body=b"not a pickle"
            )
    return client


def write_config(
    tmp_path: Path, interval: float = 3600, rollout: dict[str, Any] | None = None
) -> Path:
    path = tmp_path / "sync.yaml"
    path.write_text(json.dumps({"interval": interval, "entries": [
        {"model": "iris", "alias": "champion", "app": "iris", "namespace": "default",
         "timeout": 60, "rollout": rollout or {"policy": "replace"}}]}))  # fmt: skip
    return path


class SyncProcess:
    def __init__(self, cluster: Cluster, s3: S3Server, tracking: str, config: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
        env.update(
            s3.env, MLFLOW_TRACKING_URI=tracking, KSERVE_PREDICTOR_SYNC_WEBHOOK_SECRET=SECRET
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kserve_predictor", "sync", "--config", str(config),
             "--kubeconfig", str(cluster.kubeconfig), "--listen", f"127.0.0.1:{self.port}"],
            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip

    def status(self) -> list[dict[str, Any]]:
        try:
            return requests.get(f"{self.url}/status", timeout=2).json()  # type: ignore[no-any-return]
        except requests.RequestException:
            return []

    def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 180
    ) -> dict[str, Any]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            states = self.status()
            if states and check(states[0]):
                return states[0]
            assert self.process.poll() is None, self.output()[-3000:]
            time.sleep(0.5)
        raise AssertionError(
            f"timed out; last status {self.status()}; log:\n{self.output()[-3000:]}"
        )

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        OUTPUTS.append(self.output())


def served(state: dict[str, Any], version: str) -> bool:
    return state["served"] == version and state["state"] == "in-sync"


def storage(cluster: Cluster, tracking: str) -> str:
    from kserve_predictor.kserve.connection import connect
    from kserve_predictor.settings.groups import ClusterSettings

    live = connect(ClusterSettings(str(cluster.kubeconfig))).get(
        "InferenceService", "default", "iris"
    )
    assert live is not None
    return storage_uri(live)


def predict(cluster: Cluster) -> None:
    from kserve_predictor.kserve.connection import connect
    from kserve_predictor.settings.groups import ClusterSettings

    live = connect(ClusterSettings(str(cluster.kubeconfig))).get(
        "InferenceService", "default", "iris"
    )
    url = live["status"]["url"] + "/v1/models/iris:predict"
    answer = requests.post(url, json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=10)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1


def test_alias_moved_webhook_delivered_by_mlflow(
    cluster: Cluster, s3: S3Server, mlflow_server: str, tmp_path: Path
) -> None:
    client = log_versions(mlflow_server, 2)
    sync = SyncProcess(cluster, s3, mlflow_server, write_config(tmp_path), tmp_path / "sync.log")
    try:
        client.create_webhook(name="kserve-sync", url=f"{sync.url}/webhook",
                              events=["model_version_alias.created"], secret=SECRET)  # fmt: skip
        client.set_registered_model_alias("iris", "champion", "1")
        sync.wait_for(lambda s: served(s, "1"))  # the first poll, at start
        client.set_registered_model_alias("iris", "champion", "2")
        # The poll interval is an hour: only MLflow's delivery can move it this soon.
        state = sync.wait_for(lambda s: served(s, "2"), timeout=120)
        assert state["wanted"] == "2"
        source = client.get_model_version_download_uri("iris", "2")
        assert storage(cluster, mlflow_server).startswith(source.rstrip("/") + "/")
        predict(cluster)
        metrics = requests.get(f"{sync.url}/metrics", timeout=5).text
        assert 'kserve_predictor_sync_webhooks_total{result="accepted"}' in metrics
        assert (
            'kserve_predictor_sync_rollouts_total{app="default/iris",outcome="succeeded"} 2.0'
            in metrics
        )
        assert requests.get(f"{sync.url}/healthz", timeout=5).status_code == 200
    finally:
        sync.stop()
    assert SECRET not in sync.output()


def test_bad_signature_refused_and_body_not_logged(
    cluster: Cluster, s3: S3Server, mlflow_server: str, tmp_path: Path
) -> None:
    log_versions(mlflow_server, 1)
    sync = SyncProcess(cluster, s3, mlflow_server, write_config(tmp_path), tmp_path / "sync.log")
    try:
        sync.wait_for(lambda s: s["state"] in ("in-sync", "error", "rolling-out"))
        body = json.dumps({"entity": "model_version_alias", "action": "created",
                           "data": {"name": "iris", "alias": "champion", "version": "1",
                                    "note": BODY_MARKER}}).encode()  # fmt: skip
        now = str(int(time.time()))
        headers = {"X-MLflow-Delivery-Id": "d1", "X-MLflow-Timestamp": now,
                   "Content-Type": "application/json"}  # fmt: skip
        unsigned = requests.post(f"{sync.url}/webhook", data=body, headers=headers, timeout=5)
        wrong = requests.post(
            f"{sync.url}/webhook",
            data=body,
            timeout=5,
            headers={**headers, "X-MLflow-Signature": sign("another-secret", "d1", now, body)},
        )
        stale = requests.post(f"{sync.url}/webhook", data=body, timeout=5, headers={
            **headers, "X-MLflow-Timestamp": "1000",
            "X-MLflow-Signature": sign(SECRET, "d1", "1000", body)})  # fmt: skip
        right = requests.post(
            f"{sync.url}/webhook",
            data=body,
            timeout=5,
            headers={**headers, "X-MLflow-Signature": sign(SECRET, "d1", now, body)},
        )
        assert (unsigned.status_code, wrong.status_code, stale.status_code) == (401, 401, 401)
        assert right.status_code == 200  # the check is not one that refuses everything
        time.sleep(0.5)
    finally:
        sync.stop()
    output = sync.output()
    assert output.count('"decision": "webhook-refused"') == 3
    assert '"reason": "unsigned"' in output and '"reason": "wrong signature"' in output
    assert BODY_MARKER not in output


def test_missed_webhook_caught_by_polling(
    cluster: Cluster, s3: S3Server, mlflow_server: str, tmp_path: Path
) -> None:
    client = log_versions(mlflow_server, 2)
    client.set_registered_model_alias("iris", "champion", "1")
    # No webhook registered at all: every alias move is "missed".
    config = write_config(tmp_path, interval=2)
    sync = SyncProcess(cluster, s3, mlflow_server, config, tmp_path / "sync.log")
    try:
        sync.wait_for(lambda s: served(s, "1"))
        client.set_registered_model_alias("iris", "champion", "2")
        sync.wait_for(lambda s: served(s, "2"), timeout=120)
        predict(cluster)
    finally:
        sync.stop()


def live(cluster: Cluster) -> dict[str, Any]:
    from kserve_predictor.kserve.connection import connect
    from kserve_predictor.settings.groups import ClusterSettings

    isvc = connect(ClusterSettings(str(cluster.kubeconfig))).get(
        "InferenceService", "default", "iris"
    )
    assert isvc is not None
    return isvc


def under(uri: str, source: str) -> bool:
    return uri.startswith(source.rstrip("/") + "/")


def test_canary_promoted(
    cluster: Cluster, s3: S3Server, mlflow_server: str, tmp_path: Path
) -> None:

    client = log_versions(mlflow_server, 2)
    client.set_registered_model_alias("iris", "champion", "1")
    config = write_config(tmp_path, 2, {"policy": "canary", "percent": 20, "promote_after": 1})
    sync = SyncProcess(cluster, s3, mlflow_server, config, tmp_path / "sync.log")
    try:
        sync.wait_for(lambda s: served(s, "1"))
        client.set_registered_model_alias("iris", "champion", "2")
        sync.wait_for(lambda s: served(s, "2"), timeout=120)
        metrics = requests.get(f"{sync.url}/metrics", timeout=5).text
    finally:
        sync.stop()
    isvc = live(cluster)
    assert under(storage_uri(isvc), client.get_model_version_download_uri("iris", "2"))
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    view = split(isvc)
    assert view is not None
    assert [t["percent"] for t in view["traffic"]] == [100], view
    assert view["latest_created_revision"].endswith("-00002"), view  # v1, then v2's canary
    assert 'outcome="promoted"}' in metrics
    assert '"decision": "promoted"' in sync.output()
    predict(cluster)


def test_failing_version_rolled_back_old_still_answers(
    cluster: Cluster, s3: S3Server, mlflow_server: str, tmp_path: Path
) -> None:

    client = log_versions(mlflow_server, 2, broken={2})
    client.set_registered_model_alias("iris", "champion", "1")
    sync = SyncProcess(cluster, s3, mlflow_server, write_config(tmp_path, 2), tmp_path / "sync.log")
    try:
        sync.wait_for(lambda s: served(s, "1"))
        client.set_registered_model_alias("iris", "champion", "2")
        state = sync.wait_for(lambda s: s["state"] == "failed" and s["wanted"] == "2", timeout=150)
        time.sleep(5)  # two more polls: the failed version is not rolled out again
        assert sync.status()[0]["state"] == "failed"
    finally:
        sync.stop()
    assert state["served"] == "1"
    assert under(storage_uri(live(cluster)), client.get_model_version_download_uri("iris", "1"))
    predict(cluster)  # the old version answers
    tags = client.get_model_version("iris", "2").tags
    assert tags.get("kserve-predictor/failed/default/iris")
    output = sync.output()
    assert '"decision": "rolled_back"' in output
    assert output.count('"decision": "roll-out"') == 2  # version 1, then version 2 once


def test_killed_mid_rollout_completes_once_after_restart(
    cluster: Cluster, s3: S3Server, mlflow_server: str, tmp_path: Path
) -> None:
    from kserve_predictor.kserve.readiness import predictor_status

    client = log_versions(mlflow_server, 2)
    client.set_registered_model_alias("iris", "champion", "1")
    config = write_config(tmp_path, 2)
    sync = SyncProcess(cluster, s3, mlflow_server, config, tmp_path / "first.log")
    sync.wait_for(lambda s: served(s, "1"))
    source = client.get_model_version_download_uri("iris", "2")
    client.set_registered_model_alias("iris", "champion", "2")
    deadline = time.time() + 120
    while not under(storage_uri(live(cluster)), source):  # applied: the rollout has begun
        assert time.time() < deadline, sync.output()[-3000:]
        time.sleep(0.02)
    sync.stop(signal.SIGKILL)
    status = predictor_status(live(cluster))
    assert status.get("latestReadyRevision") != status.get("latestCreatedRevision") or not str(
        status.get("latestCreatedRevision", "")
    ).endswith("2"), "killed too late: the rollout had finished"
    again = SyncProcess(cluster, s3, mlflow_server, config, tmp_path / "second.log")
    try:
        again.wait_for(lambda s: served(s, "2"), timeout=120)
    finally:
        again.stop()
    status = predictor_status(live(cluster))
    # One rollout of version 2: revision 2, not a third one made by rolling out again.
    assert (
        status["latestCreatedRevision"] == status["latestReadyRevision"] == "iris-predictor-00002"
    )
    predict(cluster)


def test_once_rolls_out_then_reports_in_sync(
    cluster: Cluster, s3: S3Server, mlflow_server: str, tmp_path: Path
) -> None:
    from conftest import run_cli

    client = log_versions(mlflow_server, 1)
    client.set_registered_model_alias("iris", "champion", "1")
    args = ("sync", "--once", "-o", "json", "--config", str(write_config(tmp_path)),
            "--kubeconfig", str(cluster.kubeconfig))  # fmt: skip
    env = {**s3.env, "MLFLOW_TRACKING_URI": mlflow_server}
    first = run_cli(*args, env=env)
    assert first.code == 0, first.stderr
    assert json.loads(first.stdout)["entries"][0] | {"message": ""} == {
        "app": "iris", "namespace": "default", "model": "iris", "alias": "champion",
        "wanted": "1", "served": "1", "state": "in-sync", "message": ""}  # fmt: skip
    assert '"decision": "succeeded"' in first.stderr
    again = run_cli(*args, env=env)
    assert again.code == 0 and '"decision": "in-sync"' in again.stderr
    assert '"decision": "roll-out"' not in again.stderr  # nothing rolled out twice


def sync_role(namespace: str) -> Any:
    """deploy/sync/sync.yaml's Role (moved to ``namespace``) and its ClusterRole."""
    import yaml
    from servers.k8s_api import Role

    path = Path(__file__).parent.parent / "deploy" / "sync" / "sync.yaml"
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    (role,) = [d for d in documents if d["kind"] == "Role"]
    (cluster_role,) = [d for d in documents if d["kind"] == "ClusterRole"]
    role["metadata"]["namespace"] = namespace
    return Role.from_manifest(role, cluster_role)


def test_the_sync_role_grants_exactly_what_sync_uses(
    s3: S3Server, mlflow_server: str, tmp_path: Path
) -> None:
    """deploy/sync/sync.yaml, measured as deploy/rbac.yaml is (test_rbac.py): `sync` against an
    API server enforcing that Role uses exactly its verbs: a first rollout, a canary of the next
    version promoted, and a poll with nothing to do."""
    from conftest import LocalRuntimes, run_cli, seed_simulated_runtimes
    from servers.k8s_api import KubeApiServer, crd_available
    from servers.kserve_controller import KServeController

    from kserve_predictor.kserve.client import USER_AGENT

    if not crd_available():
        pytest.skip("../shared/kserve/crd/serving.kserve.io_inferenceservices.yaml is absent")
    role = sync_role("default")
    api = KubeApiServer(
        namespaces=("default",), user="system:serviceaccount:default:kserve-predictor-sync",
        role=role,
    )  # fmt: skip
    api.start()
    seed_simulated_runtimes(api)
    runtimes = LocalRuntimes()
    controller = KServeController(api, runtimes).attach()
    try:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", "default")
        client = log_versions(mlflow_server, 2)
        config = write_config(
            tmp_path, rollout={"policy": "canary", "percent": 30, "promote_after": 0}
        )
        args = ("sync", "--once", "--config", str(config), "--kubeconfig", str(kubeconfig))
        env = {**s3.env, "MLFLOW_TRACKING_URI": mlflow_server}
        for version in ("1", "2", "2"):
            client.set_registered_model_alias("iris", "champion", version)
            done = run_cli(*args, env=env)
            assert done.code == 0, done.stderr
        requests_made = [r for r in api.requests if r.user_agent.startswith(USER_AGENT)]
        used = {access for r in requests_made if r.status != 403 for access in r.access}
        granted = role.grants()
        assert used - granted == set(), "sync needs more than deploy/sync/sync.yaml grants"
        assert granted - used == set(), "deploy/sync/sync.yaml grants verbs sync never uses"
    finally:
        api.stop()
        runtimes.close()
        controller.close()
