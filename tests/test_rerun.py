"""Re-runs of the FuseML step, counted on the servers' side: an unchanged model writes nothing
(no Kubernetes write, no FuseML registration) and reads each model file once; a run where one
field changes still writes it. Runs `run` as FuseML does, against the Kubernetes API test
server with the KServe controller simulation, moto's S3 server and the FuseML test server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Cluster, S3Recording, S3Server, codeset, run_cli, step_env

NAMESPACE = "fuseml-workloads"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def object_reads(recording: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """GETs of objects (not listings), by (path, Range header)."""
    reads: Counter[tuple[str, str]] = Counter()
    for entry in recording:
        path, _, query = entry["url"].partition("?")
        if entry["method"] != "GET" or "list-type" in query or path.endswith("/"):
            continue
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        reads[(path.split("://", 1)[-1].partition("/")[2], headers.get("range", ""))] += 1
    return reads


def k8s_writes(cluster: Cluster, since: int) -> list[str]:
    """The write requests (dry runs excluded) the Kubernetes API server received."""
    return [
        f"{r.method} {r.path}"
        for r in cluster.api.requests[since:]  # type: ignore[attr-defined]
        if r.method in WRITES and not r.query.get("dryRun")
    ]


def test_rerun_of_an_unchanged_model_writes_nothing_and_reads_each_file_once(
    s3: S3Server,
    s3_model,  # type: ignore[no-untyped-def]
    cluster: Cluster,
    fuseml,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # where moto writes its recording
    env = step_env(s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path / "r")
    env["FUSEML_APP_NAME"] = "iris"
    work = codeset(tmp_path)
    first = run_cli("run", env=env, cwd=work)
    assert first.code == 0, first.stderr
    assert "iris" in fuseml.applications
    k8s_before, fuseml_before = len(cluster.api.requests), len(fuseml.requests_log)  # type: ignore[attr-defined]

    recorder = S3Recording(s3.endpoint)
    recorder.start()
    again = run_cli("run", "--output", "json", env=env, cwd=work)
    recording = recorder.stop()
    assert again.code == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["changed"] == [] and data["registered"] is True

    # Kubernetes: each apply's dry run said it would change nothing, so no apply was sent.
    assert k8s_writes(cluster, k8s_before) == []
    # FuseML: the preflight's listing holds the Application as it would be posted.
    assert [m for m, _, _ in fuseml.requests_log[fuseml_before:] if m in WRITES] == []
    # S3: detection runs twice (before and after the cluster's runtimes are known); each
    # model file (and each ranged read of one) is fetched once.
    reads = object_reads(recording)
    assert reads, "the recording holds the run's reads"
    assert {key: n for key, n in reads.items() if n > 1} == {}


def test_a_run_that_changes_one_field_still_writes_it(
    s3: S3Server,
    s3_model,  # type: ignore[no-untyped-def]
    cluster: Cluster,
    fuseml,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    url = s3_model("sklearn_pickle")
    env = step_env(s3, cluster, fuseml, url, tmp_path / "r", FUSEML_APP_NAME="iris")
    work = codeset(tmp_path)
    assert run_cli("run", env=env, cwd=work).code == 0
    api = cluster.api

    def run(**extra: str) -> dict[str, Any]:
        done = run_cli("run", "--output", "json", env={**env, **extra}, cwd=work)
        assert done.code == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def isvc() -> dict[str, Any]:
        stored: dict[str, Any] = api.get_object("inferenceservices", NAMESPACE, "iris")  # type: ignore[attr-defined]
        return stored

    # Only an annotation differs (metadata, no new generation): still applied.
    note = '{"metadata": {"annotations": {"team": "fraud"}}}'
    assert run(FUSEML_OVERLAY=note)["changed"] == ["InferenceService/iris"]
    assert isvc()["metadata"]["annotations"]["team"] == "fraud"
    # Only a label differs.
    label = '{"metadata": {"annotations": {"team": "fraud"}, "labels": {"tier": "gold"}}}'
    assert run(FUSEML_OVERLAY=label)["changed"] == ["InferenceService/iris"]
    assert isvc()["metadata"]["labels"]["tier"] == "gold"
    # Only one serving option differs.
    generation = isvc()["metadata"]["generation"]
    result = run(FUSEML_OVERLAY=label, FUSEML_CONTAINER_CONCURRENCY="4")
    assert result["changed"] == ["InferenceService/iris"]
    assert isvc()["spec"]["predictor"]["containerConcurrency"] == 4
    assert isvc()["metadata"]["generation"] == generation + 1

    # A new model version: the FuseML Application's description names it, so it is posted.
    new_url = s3_model("sklearn_pickle")
    posts = sum(1 for m, _, _ in fuseml.requests_log if m == "POST")
    run(FUSEML_OVERLAY=label, FUSEML_CONTAINER_CONCURRENCY="4", FUSEML_MODEL=new_url)
    assert sum(1 for m, _, _ in fuseml.requests_log if m == "POST") == posts + 1
    assert new_url in fuseml.applications["iris"]["description"]
