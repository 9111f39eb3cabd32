"""Faults injected with the real local servers: transient ones are retried within bounds, a
dropped watch is resumed, a service that cannot become ready fails fast with its cause, and
after any failure a plain re-run leaves exactly the state a clean run leaves."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from conftest import Cluster, S3Server, codeset, run_cli, step_env

from kserve_predictor.kserve.readiness import ROLLOUT_ID

NS = "fuseml-workloads"
APP = "iris"


def fault_env(
    s3: S3Server, cluster: Cluster, fuseml: Any, url: str, tmp_path: Path, **extra: str
) -> dict[str, str]:
    return step_env(s3, cluster, fuseml, url, tmp_path / "results", FUSEML_APP_NAME=APP, **extra)


def step_waiting(api: Any, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    """The step started in its own process, returned once it watches the InferenceService."""
    step = subprocess.Popen(
        [sys.executable, "-m", "kserve_predictor", "run"],
        env={**env, "PATH": "/usr/bin:/bin"},
        cwd=codeset(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert api.wait_for_watches(1, timeout=60)
    return step


def snapshot(cluster: Cluster, fuseml: Any, s3: S3Server, bucket: str) -> dict[str, Any]:
    """The state a deployment leaves, without what differs between any two runs (uids,
    versions, timestamps, the simulated runtime's port, the rollout id)."""
    api = cluster.api
    isvc = api.get_object("inferenceservices", NS, APP)  # type: ignore[attr-defined]
    secret = api.get_object("secrets", NS, f"{APP}-kserve")  # type: ignore[attr-defined]
    account = api.get_object("serviceaccounts", NS, f"{APP}-kserve")  # type: ignore[attr-defined]
    record = dict(fuseml.applications.get(APP) or {})
    record["url"] = record.get("url", "").split("/v", 1)[-1]
    keys = sorted(
        o["Key"].split("/artifacts/", 1)[1]
        for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        if "/kserve/" in o["Key"]
    )
    spec = copy.deepcopy(isvc["spec"])
    notes = spec["predictor"]["annotations"]
    notes[ROLLOUT_ID] = "<unique>" if notes.get(ROLLOUT_ID) else None  # new on each rollout
    return {
        "isvc": {
            "labels": isvc["metadata"]["labels"],
            "spec": spec,
            "ready": isvc["status"]["conditions"][-1],
        },
        "secret": {
            "labels": secret["metadata"]["labels"],
            "annotations": secret["metadata"]["annotations"],
            "data": secret["data"],
        },
        "account": account["secrets"],
        "fuseml": record,
        "converted": keys,
    }


def clean_run_snapshot(
    s3: S3Server, cluster: Cluster, fuseml: Any, env: dict[str, str], work: Path, bucket: str
) -> dict[str, Any]:
    """Delete everything, run once more from scratch, and take the snapshot of that."""
    deleted = run_cli("delete", APP, "-n", NS, env={**env, "FUSEML_SERVER_URL": fuseml.url})
    assert deleted.code == 0, deleted.stderr
    assert cluster.api.get_object("inferenceservices", NS, APP) is None  # type: ignore[attr-defined]
    assert run_cli("run", env=env, cwd=work).code == 0
    return snapshot(cluster, fuseml, s3, bucket)


def test_s3_outage_fails_then_rerun_completes(
    s3_server: S3Server, s3_model, bucket: str, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from servers.tcp_proxy import TcpProxy

    url = s3_model("sklearn_pickle")
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    env = fault_env(s3_server, cluster, fuseml, url, tmp_path, MLFLOW_S3_ENDPOINT_URL=proxy.url)
    work = codeset(tmp_path)
    proxy.pause()  # the store is down
    start = time.monotonic()
    # retried for 10 s, not the default 60 s: the outcome (exit 1, "unreachable", nothing
    # applied) is the same, and the budget's length is not what this test proves
    down = run_cli("run", env={**env, "KSERVE_PREDICTOR_RETRY_SECONDS": "10"}, cwd=work)
    assert down.code == 1 and "unreachable" in down.stderr
    assert time.monotonic() - start < 90  # retried, but bounded
    assert cluster.api.list_objects("inferenceservices", NS) == []  # type: ignore[attr-defined]

    proxy.resume()
    proxy.drop_next(2)  # and it still drops a couple of connections: retried transparently
    up = run_cli("run", env=env, cwd=work)
    assert up.code == 0, up.stderr
    assert proxy.dropped >= 2
    after = snapshot(cluster, fuseml, s3_server, bucket)
    assert clean_run_snapshot(s3_server, cluster, fuseml, env, work, bucket) == after
    proxy.close()


def test_kubernetes_api_errors_are_retried(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    api = cluster.api
    api.fail_next("PATCH", "inferenceservices", 500, times=2)  # type: ignore[attr-defined]
    api.fail_next("PATCH", "secrets", 429, times=1)  # type: ignore[attr-defined]
    api.fail_next("GET", "inferenceservices", 503, times=1)  # type: ignore[attr-defined]
    done = run_cli(
        "run",
        env=fault_env(s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path),
        cwd=codeset(tmp_path),
    )
    assert done.code == 0, done.stderr
    statuses = [r.status for r in api.requests]  # type: ignore[attr-defined]
    assert statuses.count(500) == 2 and 429 in statuses and 503 in statuses


def test_a_dropped_watch_is_resumed(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    api = cluster.api
    env = fault_env(s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path)
    step = step_waiting(api, env, tmp_path)
    assert api.drop_watches(abrupt=True) >= 1  # type: ignore[attr-defined]
    out, err = step.communicate(timeout=120)
    assert step.returncode == 0, err
    watches = [r for r in api.requests if r.query.get("watch") in ("true", "True", "1")]  # type: ignore[attr-defined]
    assert len(watches) >= 2  # the step watched again after the drop
    assert requests.post(
        out.strip(), json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=30
    ).json() == {"predictions": [0]}


def test_fuseml_503_is_retried_and_persistent_failure_names_the_url(
    s3: S3Server, s3_model, bucket: str, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = fault_env(s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path)
    work = codeset(tmp_path)
    fuseml.fail_next(503, times=2, method="POST")
    assert run_cli("run", env=env, cwd=work).code == 0
    assert APP in fuseml.applications

    # FuseML lost the application, so the next run must register it again, and FuseML keeps
    # failing (a re-run whose application is listed as it is registers nothing).
    assert requests.delete(f"{fuseml.url}/applications/{APP}", timeout=10).status_code == 204
    fuseml.fail_next(503, times=50, method="POST")
    # a 10 s budget, not the default 60 s: the first run above proved the retries
    failed = run_cli("run", env={**env, "KSERVE_PREDICTOR_RETRY_SECONDS": "10"}, cwd=work)
    assert failed.code == 1
    assert (
        "HTTP 503" in failed.stderr
        and "the service itself is up at http://127.0.0.1:" in failed.stderr
    )
    fuseml.clear_faults()  # FuseML is back: a plain re-run completes
    assert run_cli("run", env=env, cwd=work).code == 0
    after = snapshot(cluster, fuseml, s3, bucket)
    assert clean_run_snapshot(s3, cluster, fuseml, env, work, bucket) == after


def test_no_supporting_runtime_fails_fast(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster.api.delete_object("clusterservingruntimes", None, "kserve-sklearnserver")  # type: ignore[attr-defined]
    env = fault_env(
        s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path, FUSEML_TIMEOUT="300",
        FUSEML_PREDICTOR="sklearn",
    )  # fmt: skip
    # The compatibility check sees it first: no runtime serves sklearn over v1.
    work = codeset(tmp_path)
    refused = run_cli("run", env=env, cwd=work)
    assert refused.code == 2 and "no ServingRuntime serves" in refused.stderr
    # Deployed anyway, KServe's own answer is seen at once.
    start = time.monotonic()
    done = run_cli("run", env={**env, "FUSEML_ALLOW_INCOMPATIBLE": "true"}, cwd=work)
    assert done.code == 1 and time.monotonic() - start < 60
    assert "NoSupportingRuntime" in done.stderr and "sklearn" in done.stderr


def test_model_load_failure_then_fixed_model_rerun(
    s3: S3Server, s3_model, bucket: str, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = s3_model("sklearn_pickle")
    key = url.split(f"{bucket}/", 1)[1] + "/model.pkl"
    good = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"garbage")
    env = fault_env(s3, cluster, fuseml, url, tmp_path)
    work = codeset(tmp_path)
    failed = run_cli("run", env=env, cwd=work)
    assert failed.code == 1 and "ModelLoadFailed" in failed.stderr
    assert APP not in fuseml.applications

    s3.client().put_object(Bucket=bucket, Key=key, Body=good)  # the model is fixed (re-logged)
    fixed = run_cli("run", "--output", "json", env=env, cwd=work)
    assert fixed.code == 0, fixed.stderr
    assert json.loads(fixed.stdout)["copied"] == ["model.pkl"]  # only the changed file
    after = snapshot(cluster, fuseml, s3, bucket)
    assert clean_run_snapshot(s3, cluster, fuseml, env, work, bucket) == after


def test_ten_reruns_change_nothing(
    s3: S3Server, s3_model, bucket: str, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = fault_env(s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path)
    work = codeset(tmp_path)
    urls, copies = set(), 0
    first_version = None
    for _ in range(10):
        done = run_cli("run", "--output", "json", env=env, cwd=work)
        assert done.code == 0, done.stderr
        result = json.loads(done.stdout)
        urls.add(result["prediction_url"])
        copies += len(result["copied"])
        isvc = cluster.api.get_object("inferenceservices", NS, APP)  # type: ignore[attr-defined]
        first_version = first_version or isvc["metadata"]["resourceVersion"]
        assert isvc["metadata"]["resourceVersion"] == first_version  # no spec (or any) change
    assert len(urls) == 1 and copies == 1
    assert [i["metadata"]["name"] for i in cluster.api.list_objects("inferenceservices", NS)] == [
        APP
    ]  # type: ignore[attr-defined]
    assert list(fuseml.applications) == [APP]
    assert isvc["metadata"]["generation"] == 1
    keys = [
        o["Key"]
        for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        if o["Key"].endswith("model.pkl")
    ]
    assert len(keys) == 2  # the model and its one converted copy


def test_timeout_is_kept_when_the_api_server_hangs(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    api = cluster.api
    env = fault_env(s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path, FUSEML_TIMEOUT="5")
    step = step_waiting(api, env, tmp_path)
    api.freeze()  # type: ignore[attr-defined]  # answers nothing, closes nothing
    frozen = time.monotonic()
    try:
        _, err = step.communicate(timeout=60)
    finally:
        api.thaw()  # type: ignore[attr-defined]
    assert time.monotonic() - frozen < 5 + 10  # a promise: the deadline and a little slack
    assert step.returncode == 1
    assert f"InferenceService {NS}/{APP} not ready after 5 s" in err
    assert "urllib3" not in err and "Retrying" not in err  # its warnings never reach stderr
    assert APP not in fuseml.applications


def test_an_unschedulable_predictor_fails_fast_with_the_schedulers_message(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = fault_env(
        s3,
        cluster,
        fuseml,
        s3_model("sklearn_pickle"),
        tmp_path,
        FUSEML_RESOURCES_LIMITS="{nvidia.com/gpu: 1}",
        FUSEML_TIMEOUT="300",
    )
    done = run_cli("run", env=env, cwd=codeset(tmp_path))
    assert done.code == 1
    assert (
        f"InferenceService {NS}/{APP} cannot start: Unschedulable: 0/1 nodes are available: "
        "1 Insufficient nvidia.com/gpu." in done.stderr
    )
    assert APP not in fuseml.applications


def test_a_field_someone_else_changed_is_kept_unless_forced(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from kubernetes.client import ApiClient, CustomObjectsApi

    api = cluster.api
    env = fault_env(s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path)
    work = codeset(tmp_path)
    assert run_cli("run", env=env, cwd=work).code == 0
    # a person raises the memory limit with `kubectl apply --server-side --force-conflicts`
    isvc = api.get_object("inferenceservices", NS, APP)  # type: ignore[attr-defined]
    theirs = {
        "apiVersion": isvc["apiVersion"],
        "kind": "InferenceService",
        "metadata": {"name": APP, "namespace": NS},
        "spec": {"predictor": {"model": {
            **{k: isvc["spec"]["predictor"]["model"][k] for k in ("modelFormat", "storageUri")},
            "resources": {"limits": {"memory": "3Gi"}},
        }}},
    }  # fmt: skip
    with ApiClient(api.client_configuration()) as client:  # type: ignore[attr-defined]
        CustomObjectsApi(client).patch_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", NS, "inferenceservices", APP, theirs,
            field_manager="kubectl", force=True, _content_type="application/apply-patch+yaml",
        )  # fmt: skip
    version = settled_version(api, NS, APP)  # the controller has answered kubectl's change

    refused = run_cli("run", env=env, cwd=work)
    assert refused.code == 2
    assert (
        '.spec.predictor.model.resources.limits.memory (managed by "kubectl") changed by '
        "someone else; pass --force (FUSEML_FORCE=true)"
    ) in refused.stderr
    isvc = api.get_object("inferenceservices", NS, APP)  # type: ignore[attr-defined]
    assert isvc["metadata"]["resourceVersion"] == version  # nothing was written

    forced = run_cli("run", env={**env, "FUSEML_FORCE": "true"}, cwd=work)
    assert forced.code == 0, forced.stderr
    isvc = api.get_object("inferenceservices", NS, APP)  # type: ignore[attr-defined]
    assert isvc["spec"]["predictor"]["model"]["resources"]["limits"]["memory"] == "2Gi"


def settled_version(api: Any, namespace: str, name: str) -> str:
    """The resourceVersion once the KServe simulation has reconciled the latest generation
    (its status writes come asynchronously after a spec change)."""
    deadline = time.monotonic() + 60
    while True:
        isvc = api.get_object("inferenceservices", namespace, name)
        meta, status = isvc["metadata"], isvc.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        observed = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 1)
        if (observed and ready) or time.monotonic() > deadline:
            time.sleep(0.5)  # a last status write of the same reconcile
            again = api.get_object("inferenceservices", namespace, name)["metadata"]
            if again["resourceVersion"] == meta["resourceVersion"]:
                return str(meta["resourceVersion"])
        time.sleep(0.1)
