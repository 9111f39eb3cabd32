"""The product's Kubernetes client (kserve/client.py, kserve/wait.py) against the Kubernetes
API test server, in one process: waiting for the written generation, failing fast, 410
recovery, a deadline that holds when the server hangs or restarts, field conflicts, undeclared
fields and the kubeconfig."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers.k8s_api import CRD_DIR, KubeApiServer, crd_available

from kserve_predictor.errors import NotReady, ReadyTimeout, UsageError
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.connection import connect
from kserve_predictor.kserve.readiness import ROLLOUT_ID, Expectation
from kserve_predictor.settings.groups import ClusterSettings

NS, NAME = "default", "iris"
needs_crd = pytest.mark.skipif(not crd_available(), reason=f"no KServe CRD in {CRD_DIR}")


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer(history_size=5) as srv:
        yield srv


def client(server: KubeApiServer, tmp_path: Path, **settings: Any) -> Cluster:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    return connect(ClusterSettings(str(kubeconfig), **{"retry_seconds": 5, **settings}))


def manifest(**model: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": "s3://models/iris/",
                    "resources": {"limits": {"memory": "2Gi"}},
                    **model,
                }
            }
        },
    }


def ready(generation: int, **extra: Any) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "url": f"http://{NAME}.{NS}.example.com",
        "conditions": [{"type": "Ready", "status": "True"}],
        **extra,
    }


def pod(rollout: str, ready: bool = True) -> dict[str, Any]:
    """A Standard-mode predictor pod of the rollout ``rollout``, as KServe labels it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{NAME}-predictor-{rollout}-abc12",
            "namespace": NS,
            "labels": {"serving.kserve.io/inferenceservice": NAME, "component": "predictor"},
            "annotations": {ROLLOUT_ID: rollout},
        },
        "spec": {"containers": [{"name": "kserve-container", "image": "x"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


SERVING = Expectation(rollout_id="r1")
"""The rollout the tests' one ready pod belongs to."""


def later(seconds: float, action: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_ready_status_with_the_previous_pods_is_not_ready(
    server: KubeApiServer, tmp_path: Path
) -> None:
    """KServe's first status copy after a change says Ready=True with a counter that may have
    drifted past metadata.generation: only the new rollout's pods end the wait."""
    cluster = client(server, tmp_path)
    first = cluster.apply(manifest())["metadata"]["generation"]
    server.put_object("pods", pod("r1"))
    second = cluster.apply(manifest(runtimeVersion="1.5.3"))["metadata"]["generation"]
    # The stale copy: Ready, with the Deployment's counter ahead of the new generation.
    server.update_status("inferenceservices", NS, NAME, ready(second + 3))
    expect = Expectation(rollout_id="r2", generation=second)
    with pytest.raises(ReadyTimeout, match=r"waiting for 1 Ready pod.* with rollout id r2"):
        cluster.wait_ready(NS, NAME, expect, timeout=2, poll=1)
    server.put_object("pods", pod("r2"))  # the new ReplicaSet's pod, Ready; the old one still up
    with pytest.raises(ReadyTimeout, match=r"1 pod.* of the previous rollout to go"):
        cluster.wait_ready(NS, NAME, expect, timeout=2, poll=1)
    later(0.5, lambda: server.delete_object("pods", NS, f"{NAME}-predictor-r1-abc12"))
    isvc = cluster.wait_ready(NS, NAME, expect, timeout=20, poll=1)
    assert isvc["metadata"]["generation"] == second != first


def test_the_timeout_names_the_waiting_container_not_the_finished_init_container(
    server: KubeApiServer, tmp_path: Path
) -> None:
    """The kubelet reports an init container that did its job as terminated, reason
    Completed: the timeout's diagnosis names what still waits, not that."""
    cluster = client(server, tmp_path)
    cluster.apply(manifest())

    def status(name: str, state: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "state": state, "ready": False, "restartCount": 0, "image": "x"}

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{NAME}-predictor-00001-deployment-abc12",
            "namespace": NS,
            "labels": {"serving.kserve.io/inferenceservice": NAME},
            "annotations": {ROLLOUT_ID: "r1"},
        },
        "spec": {
            "initContainers": [{"name": "storage-initializer", "image": "x"}],
            "containers": [{"name": "kserve-container", "image": "x"}],
        },
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                status(
                    "storage-initializer", {"terminated": {"reason": "Completed", "exitCode": 0}}
                )
            ],
            "containerStatuses": [
                status("kserve-container", {"waiting": {"reason": "ContainerCreating"}})
            ],
        },
    }
    server.put_object("pods", pod)
    with pytest.raises(ReadyTimeout) as timed_out:
        cluster.wait_ready(NS, NAME, SERVING, timeout=2, poll=1)
    assert "; pods: kserve-container: ContainerCreating;" in str(timed_out.value)
    assert "storage-initializer" not in str(timed_out.value)


def test_a_terminal_status_fails_with_its_cause(server: KubeApiServer, tmp_path: Path) -> None:
    cluster = client(server, tmp_path)
    generation = cluster.apply(manifest())["metadata"]["generation"]
    message = "No runtime found to support predictor with model type: sklearn and protocol v2"
    status = {
        "observedGeneration": generation,
        "conditions": [{"type": "Ready", "status": "False", "reason": "NoSupportingRuntime"}],
        "modelStatus": {
            "transitionStatus": "InvalidSpec",
            "lastFailureInfo": {"reason": "NoSupportingRuntime", "message": message},
        },
    }
    later(0.3, lambda: server.update_status("inferenceservices", NS, NAME, status))
    with pytest.raises(NotReady) as failed:
        cluster.wait_ready(NS, NAME, SERVING, timeout=30, poll=1)
    assert f"{NS}/{NAME} failed: NoSupportingRuntime: {message}" in str(failed.value)


def test_410_resumes_from_a_fresh_list(server: KubeApiServer, tmp_path: Path) -> None:
    cluster = client(server, tmp_path)
    generation = cluster.apply(manifest())["metadata"]["generation"]
    server.put_object("pods", pod("r1"))
    found: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: found.update(cluster.wait_ready(NS, NAME, SERVING, timeout=30, poll=3)),
        daemon=True,
    )
    waiter.start()
    assert server.wait_for_watches(1)
    watches_before = len(watches(server))
    for i in range(10):  # more changes than the server's history keeps: the version expires
        server.put_object("secrets", {"metadata": {"name": f"s{i}", "namespace": NS}})
    server.drop_watches()  # the stream ends; the client resumes from its (now expired) version
    deadline = time.monotonic() + 10
    while len(watches(server)) < watches_before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.update_status("inferenceservices", NS, NAME, ready(generation))
    waiter.join(timeout=20)
    assert found["status"]["observedGeneration"] == generation
    requests = server.requests
    lists = [
        i
        for i, r in enumerate(requests)
        if r.path.endswith("/inferenceservices") and not r.query.get("watch")
    ]
    assert len(lists) == 2  # the first list, and one after the 410; no GET → watch → 410 loop
    after = [r for r in requests[lists[1] + 1 :] if r.query.get("watch")]
    list_version = int(after[0].query["resourceVersion"])
    assert list_version >= server.resource_version - 1  # the list's version, not the object's
    assert len(watches(server)) <= watches_before + 3


def watches(server: KubeApiServer) -> list[Any]:
    return [r for r in server.requests if r.query.get("watch") in ("true", "True", "1")]


def test_the_deadline_holds_when_the_api_server_hangs(
    server: KubeApiServer, tmp_path: Path
) -> None:
    cluster = client(server, tmp_path)
    cluster.apply(manifest())
    later(0.5, server.freeze)
    started = time.monotonic()
    with pytest.raises(ReadyTimeout, match="not ready after 3 s"):
        cluster.wait_ready(NS, NAME, SERVING, timeout=3, poll=10)
    assert time.monotonic() - started < 3 + 5  # the deadline, the last diagnosis, and slack
    server.thaw()


def test_an_api_server_restart_is_ridden_out(tmp_path: Path) -> None:
    from conftest import free_port

    server = KubeApiServer(port=free_port())  # the same address after the restart
    server.start()
    cluster = client(server, tmp_path)
    generation = cluster.apply(manifest())["metadata"]["generation"]
    found: dict[str, Any] = {}
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            found.update(cluster.wait_ready(NS, NAME, SERVING, timeout=30, poll=1))
        except BaseException as e:  # reported below
            errors.append(e)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    assert server.wait_for_watches(1)
    server.stop()  # watches, pod checks and lists now meet refused connections
    time.sleep(2.5)
    server.start()
    server.put_object("pods", pod("r1"))
    server.update_status("inferenceservices", NS, NAME, ready(generation))
    waiter.join(timeout=30)
    server.stop()
    assert not errors, errors
    assert found["status"]["observedGeneration"] == generation


def test_connect_keeps_the_urllib3_log_level(server: KubeApiServer, tmp_path: Path) -> None:
    urllib3_log = logging.getLogger("urllib3")
    before = urllib3_log.level
    urllib3_log.setLevel(logging.ERROR)
    try:
        cluster = client(server, tmp_path)
        assert urllib3_log.level == logging.ERROR  # Configuration() would reset it to WARNING
        assert cluster.api.configuration.retries is False  # our policy retries, not urllib3
    finally:
        urllib3_log.setLevel(before)


def test_the_kubeconfig_context_chooses_the_namespace(
    server: KubeApiServer, tmp_path: Path
) -> None:
    doc = server.kubeconfig()
    doc["contexts"] = [
        {"name": "a", "context": {"cluster": "test", "user": "test", "namespace": "team-a"}},
        {"name": "b", "context": {"cluster": "test", "user": "test", "namespace": "team-b"}},
        {"name": "c", "context": {"cluster": "test", "user": "test"}},
    ]
    doc["current-context"] = "a"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    assert connect(ClusterSettings(str(path))).default_namespace == "team-a"
    assert connect(ClusterSettings(str(path), context="b")).default_namespace == "team-b"
    assert connect(ClusterSettings(str(path), context="c")).default_namespace == "default"
    with pytest.raises(
        UsageError,
        match=r"--context 'x' is not in kubeconfig .*kubeconfig \(--kubeconfig\); choose one of its contexts: a, b, c",
    ):
        connect(ClusterSettings(str(path), context="x"))


def test_a_field_another_manager_set_is_a_conflict_unless_forced(
    server: KubeApiServer, tmp_path: Path
) -> None:
    cluster = client(server, tmp_path)
    cluster.apply(manifest())
    # someone's `kubectl apply --server-side --force-conflicts` of a memory limit
    theirs = manifest()
    theirs["spec"]["predictor"]["model"]["resources"]["limits"]["memory"] = "3Gi"
    cluster.api.call_api(
        f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices/{NAME}",
        "PATCH",
        query_params=[("fieldManager", "kubectl"), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml"},
        body=theirs,
        auth_settings=["BearerToken"],
        response_types_map={200: "object"},
    )
    for dry_run in (True, False):
        with pytest.raises(UsageError) as conflict:
            cluster.apply(manifest(), dry_run=dry_run)
        assert str(conflict.value) == (
            f"cannot {'check' if dry_run else 'apply'} InferenceService {NS}/{NAME}: "
            '.spec.predictor.model.resources.limits.memory (managed by "kubectl") changed by '
            "someone else; pass --force (FUSEML_FORCE=true) to take the field over, or change "
            "it back"
        )
    memory = lambda: server.get_object("inferenceservices", NS, NAME)["spec"]["predictor"][  # noqa: E731
        "model"
    ]["resources"]["limits"]["memory"]
    assert memory() == "3Gi"
    conflicts = [r for r in server.requests if r.status == 409]
    assert len(conflicts) == 2  # a conflict is not retried
    cluster.apply(manifest(), force=True)
    assert memory() == "2Gi"


@needs_crd
def test_a_field_the_installed_crd_lacks_is_bad_input_at_once(
    tmp_path: Path,
) -> None:
    crds = tmp_path / "crd"
    shutil.copytree(CRD_DIR, crds)
    path = crds / "serving.kserve.io_inferenceservices.yaml"
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    model = schema["properties"]["spec"]["properties"]["predictor"]["properties"]["model"]
    del model["properties"]["protocolVersion"]  # an older KServe
    path.write_text(yaml.dump(crd, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    with KubeApiServer(crd_dir=crds) as server:
        # The server compiles this CRD's ~39k-line schema at its first request: on a loaded
        # machine (xdist workers, other jobs) that alone can outlast a 5 s budget, so the first
        # apply waits as long as it takes.
        patient = client(server, tmp_path, retry_seconds=300)
        patient.apply(manifest(), dry_run=True)  # what the CRD declares still applies
        cluster = client(server, tmp_path)
        started = time.monotonic()
        with pytest.raises(UsageError) as undeclared:
            cluster.apply(manifest(protocolVersion="v2"), dry_run=True)
        assert time.monotonic() - started < 2  # not retried
        assert str(undeclared.value).startswith(
            f"cannot check InferenceService {NS}/{NAME}: the installed KServe CRD does not "
            "declare .spec.predictor.model.protocolVersion; upgrade KServe"
        )
        assert server.list_objects("inferenceservices") == []


def test_failing_watches_back_off(server: KubeApiServer, tmp_path: Path) -> None:
    cluster = client(server, tmp_path)
    cluster.apply(manifest())
    # an API server in trouble: every watch fails (a list still answers)
    server.fail_next("GET", "/inferenceservices", 503, times=10_000, watch=True)
    with pytest.raises(ReadyTimeout):
        cluster.wait_ready(NS, NAME, SERVING, timeout=4, poll=1)
    failed = [r for r in server.requests if r.status == 503 and r.query.get("watch")]
    # 0.25-0.5 s, 0.5-1 s, 1-2 s, ...: a handful of attempts in 4 s, not one every few ms
    assert 2 <= len(failed) <= 8, len(failed)


def test_context_flag_and_namespace_in_the_cli(server: KubeApiServer, tmp_path: Path) -> None:
    from conftest import run_cli

    doc = server.kubeconfig()
    doc["contexts"][0]["context"]["namespace"] = "team-a"
    path = tmp_path / "team-a.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    server.add_namespace("team-a")
    cluster = client(server, tmp_path)
    cluster.apply({**manifest(), "metadata": {"name": NAME, "namespace": "team-a"}})
    env = {"KUBECONFIG": str(path)}
    unknown = run_cli("status", NAME, "--target", "kserve", "--context", "x", env=env)
    assert unknown.code == 2
    assert "--context 'x' is not in kubeconfig " in unknown.stderr
    assert "(KUBECONFIG); choose one of its contexts: test" in unknown.stderr
    found = run_cli("status", NAME, "--target", "kserve", "--context", "test", env=env)
    assert f"{NAME} (team-a)" in found.stdout, found.stderr  # the context's namespace
