"""Ownership both ways: deploy never takes over, and delete never removes, what this product did
not make (or another workflow made) unless forced; status and delete choose their target."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Cluster, S3Server, run_cli

NS = "default"
KUBECTL = [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1"}]


def env_for(s3: S3Server, cluster: Cluster, **extra: str) -> dict[str, str]:
    return {**s3.env, "KUBECONFIG": str(cluster.kubeconfig), **extra}


@pytest.fixture(autouse=True)
def no_model_servers(request: pytest.FixtureRequest) -> None:
    """These tests never send a prediction (--no-smoke-test): the simulated KServe still runs
    its storage initializer, but reports Ready without starting a model server (seconds each)."""
    if "cluster" in request.fixturenames:
        cluster = request.getfixturevalue("cluster")
        cluster.controller.serve = lambda runtime, folder, name, isvc, spec: "http://127.0.0.1:9"


def put(cluster: Cluster, plural: str, obj: dict[str, Any]) -> None:
    cluster.api.put_object(plural, obj)  # type: ignore[attr-defined]


def get(cluster: Cluster, plural: str, name: str) -> dict[str, Any] | None:
    return cluster.api.get_object(plural, NS, name)  # type: ignore[attr-defined,no-any-return]


def someones(kind: str, name: str) -> tuple[str, dict[str, Any]]:
    meta = {"name": name, "namespace": NS, "labels": {"team": "search"}, "managedFields": KUBECTL}
    if kind == "Secret":
        data = {"AWS_SECRET_ACCESS_KEY": base64.b64encode(b"their-own-key").decode()}
        return "secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data}
    if kind == "ServiceAccount":
        return "serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
    spec = {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://o/m"}}}
    body = {"apiVersion": "serving.kserve.io/v1beta1", "kind": kind, "metadata": meta, "spec": spec}
    return "inferenceservices", body


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("kind", ["Secret", "ServiceAccount"])
def test_deploy_refuses_someone_elses_credentials_and_force_adopts(
    s3: S3Server, s3_model, cluster: Cluster, kind: str
) -> None:  # type: ignore[no-untyped-def]
    plural, theirs = someones(kind, "iris-kserve")
    put(cluster, plural, theirs)
    url = s3_model("sklearn_pickle")
    refused = run_cli("deploy", "--model", url, "--app-name", "iris", env=env_for(s3, cluster))
    assert refused.code == 2
    message = one_line_error(refused.stderr)
    assert f"{kind} default/iris-kserve already exists and belongs to another owner" in message
    assert "kubectl-client-side-apply" in message and "--force" in message
    assert get(cluster, plural, "iris-kserve")["metadata"]["labels"] == {"team": "search"}  # type: ignore[index]
    assert get(cluster, "inferenceservices", "iris") is None
    adopted = run_cli(
        "deploy", "--model", url, "--app-name", "iris", "--force", "--no-smoke-test",
        env=env_for(s3, cluster),
    )  # fmt: skip
    assert adopted.code == 0, adopted.stderr
    labels = get(cluster, plural, "iris-kserve")["metadata"]["labels"]  # type: ignore[index]
    assert labels["app.kubernetes.io/managed-by"] == "kserve-predictor"


def test_a_workflow_name_the_label_sanitizes_still_owns_its_service(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:  # type: ignore[no-untyped-def]
    workflow = "nightly run " + "x" * 70  # a space, and longer than a label value may be
    env = env_for(s3, cluster)
    url = s3_model("sklearn_pickle")
    args = ["deploy", "--model", url, "--app-name", "iris", "--workflow", workflow]
    first = run_cli(*args, "--no-smoke-test", env=env)
    assert first.code == 0, first.stderr
    again = run_cli(*args, "--no-smoke-test", env=env)
    assert again.code == 0, again.stderr
    deleted = run_cli("delete", "iris", "--workflow", workflow, env=env)
    assert deleted.code == 0 and "deleted InferenceService default/iris" in deleted.stdout


@pytest.mark.parametrize("kind", ["InferenceService", "Secret"])
def test_delete_refuses_what_it_did_not_make_and_force_overrides(
    s3: S3Server, s3_model, cluster: Cluster, kind: str
) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster)
    if kind == "Secret":  # our service, next to an unrelated Secret of the same name
        done = run_cli(
            "deploy", "--model", s3_model("sklearn_pickle"), "--app-name", "theirs",
            "--no-smoke-test", env=env,
        )  # fmt: skip
        assert done.code == 0, done.stderr
    plural, obj = someones(kind, "theirs-kserve" if kind == "Secret" else "theirs")
    put(cluster, plural, obj)
    refused = run_cli("delete", "theirs", env=env)
    assert refused.code == 2
    message = one_line_error(refused.stderr)
    assert "belongs to another owner (kubectl-client-side-apply)" in message
    assert "nothing was deleted" in message and "--force" in message
    assert get(cluster, "inferenceservices", "theirs") is not None
    assert get(cluster, plural, obj["metadata"]["name"]) is not None
    forced = run_cli("delete", "theirs", "--force", env=env)
    assert forced.code == 0 and "deleted InferenceService default/theirs" in forced.stdout
    assert get(cluster, plural, obj["metadata"]["name"]) is None


def test_delete_of_another_workflows_service_or_record_is_refused(
    s3: S3Server, s3_model, cluster: Cluster, fuseml
) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster, FUSEML_SERVER_URL=fuseml.url)
    done = run_cli(
        "deploy", "--model", s3_model("sklearn_pickle"), "--app-name", "boost",
        "--workflow", "first", "--no-smoke-test", env=env,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    other = run_cli("delete", "boost", "--workflow", "second", env=env)
    assert other.code == 2 and "FuseML workflow 'first'" in one_line_error(other.stderr)
    stolen = {**fuseml.applications["boost"], "workflow": "someone-else"}
    assert requests.post(f"{fuseml.url}/applications", json=stolen, timeout=10).status_code == 201
    record = run_cli("delete", "boost", env=env)
    assert record.code == 2
    message = one_line_error(record.stderr)
    assert "FuseML application boost" in message and "'someone-else'" in message
    assert get(cluster, "inferenceservices", "boost") is not None and "boost" in fuseml.applications
    forced = run_cli("delete", "boost", "--force", env=env)
    assert forced.code == 0 and "deleted FuseML application boost" in forced.stdout
    assert get(cluster, "inferenceservices", "boost") is None and "boost" not in fuseml.applications


def local_record(name: str) -> Path:
    """A background server recorded in the (session's) local registry; its pid is long gone."""
    apps = Path(os.environ["KSERVE_PREDICTOR_HOME"]) / "apps"
    apps.mkdir(parents=True, exist_ok=True)
    record = apps / f"{name}.json"
    record.write_text(
        json.dumps(
            {
                "name": name,
                "pid": 999999,
                "host": "127.0.0.1",
                "port": 1,
                "engine": "sklearn",
                "protocol": "v1",
                "model": "s3://b/m",
                "folder": "/x",
                "log": "/x.log",
                "prediction_url": f"http://127.0.0.1:1/v1/models/{name}:predict",
                "started": 0,
            }
        )
    )
    return record


def test_a_name_both_local_and_on_kserve_must_be_chosen(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster)
    done = run_cli(
        "deploy", "--model", s3_model("sklearn_pickle"), "--app-name", "twin",
        "--no-smoke-test", env=env,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    record = local_record("twin")
    for command in ("status", "delete"):
        ambiguous = run_cli(command, "twin", env=env)
        assert ambiguous.code == 2
        message = one_line_error(ambiguous.stderr)
        assert "both a local deployment and InferenceService default/twin" in message
        assert "--target local or --target kserve" in message
    assert record.exists() and get(cluster, "inferenceservices", "twin") is not None
    remote = run_cli("status", "twin", "--target", "kserve", "--output", "json", env=env)
    assert remote.code == 0 and json.loads(remote.stdout)["target"] == "kserve"
    local = run_cli("status", "twin", "--target", "local", "--output", "json", env=env)
    assert local.code == 1 and json.loads(local.stdout)["target"] == "local"  # not running
    gone = run_cli("delete", "twin", "--target", "local", env=env)
    assert gone.code == 0 and "deleted local server twin" in gone.stdout
    assert not record.exists() and get(cluster, "inferenceservices", "twin") is not None
    remote_gone = run_cli("delete", "twin", "--target", "kserve", env=env)
    assert remote_gone.code == 0 and get(cluster, "inferenceservices", "twin") is None


def test_delete_is_idempotent_with_and_without_a_cluster(cluster: Cluster) -> None:
    with_cluster = {"KUBECONFIG": str(cluster.kubeconfig)}
    for env in ({}, with_cluster):  # the session has no Kubernetes configuration: no cluster
        for target in ("auto", "local"):
            done = run_cli("delete", "ghost", "--target", target, env=env)
            assert done.code == 0 and "nothing named ghost to delete" in done.stdout, done.stderr
    on_kserve = run_cli("delete", "ghost", "--target", "kserve", env=with_cluster)
    assert on_kserve.code == 0 and "nothing named ghost to delete" in on_kserve.stdout
    no_cluster = run_cli("delete", "ghost", "--target", "kserve")
    assert no_cluster.code == 2 and "no Kubernetes configuration" in no_cluster.stderr
    missing = run_cli("status", "ghost", env=with_cluster)
    assert missing.code == 2 and "no InferenceService default/ghost and no local" in missing.stderr
