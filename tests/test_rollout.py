"""Canary rollouts in Knative mode: deploy v1, deploy v2 with a canary, status shows the split,
promote, rollback, idempotence, ownership; against the CRD-validating API test server and the
KServe controller simulation, with real model servers behind the split."""

from __future__ import annotations

import json
from typing import Any

import requests
from conftest import Cluster, S3Server, run_cli

from kserve_predictor.kserve.isvc import PREVIOUS
from kserve_predictor.settings.groups import ClusterSettings, DeploySettings, S3Settings
from kserve_predictor.settings.serving import ServingOptions

NS = "default"
ROWS = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def env_for(s3: S3Server, cluster: Cluster) -> dict[str, str]:
    return {**s3.env, "KUBECONFIG": str(cluster.kubeconfig)}


def settings(cluster: Cluster, url: str, name: str, canary: int | None = None) -> DeploySettings:
    return DeploySettings(
        model_url=url,
        app_name=name,
        namespace=NS,
        s3=S3Settings.from_env(),
        cluster=ClusterSettings(kubeconfig=str(cluster.kubeconfig)),
        timeout=120,
        smoke_test=False,
        options=ServingOptions(canary_traffic_percent=canary),
    )


def deploy(cluster: Cluster, url: str, name: str, canary: int | None = None) -> Any:
    from kserve_predictor.ops.deploy import deploy as run

    return run(settings(cluster, url, name, canary))


def isvc(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.api.get_object("inferenceservices", NS, name)  # type: ignore[attr-defined,no-any-return]


def storage(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["predictor"]["model"]["storageUri"])


def traffic(obj: dict[str, Any]) -> dict[str, int]:
    return {
        t["revisionName"]: t["percent"]
        for t in obj["status"]["components"]["predictor"].get("traffic", [])
    }


def predict(url: str, count: int) -> None:
    for _ in range(count):  # one connection each: the route splits per connection
        answer = requests.post(f"{url}/v1/models/iris:predict", json=ROWS, timeout=10)
        assert answer.status_code == 200, answer.text


def routed(cluster: Cluster, name: str) -> dict[str, int]:
    svc = cluster.controller.service(NS, name)  # type: ignore[attr-defined]
    return {r.name: r.routed for r in svc.revisions}


def status_json(env: dict[str, str], name: str) -> dict[str, Any]:
    done = run_cli("status", name, "--output", "json", env=env)
    assert done.code == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_canary_split_promote_and_rollback(s3: S3Server, s3_model, cluster: Cluster) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster)
    v1_url, v2_url, v3_url = (s3_model("sklearn_pickle") for _ in range(3))
    first = run_cli("deploy", "--model", v1_url, "--app-name", "iris", env=env)
    assert first.code == 0, first.stderr
    v1 = storage(isvc(cluster, "iris"))
    r1, r2 = "iris-predictor-00001", "iris-predictor-00002"
    assert PREVIOUS not in (isvc(cluster, "iris")["metadata"].get("annotations") or {})

    # Promote with nothing to promote: refused, nothing changed.
    generation = isvc(cluster, "iris")["metadata"]["generation"]
    refused = run_cli("promote", "iris", env=env)
    assert refused.code == 2 and "no canary to promote" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    refused = run_cli("rollback", "iris", env=env)
    assert refused.code == 2 and "no previous model recorded" in refused.stderr
    assert isvc(cluster, "iris")["metadata"]["generation"] == generation

    # v2 as a canary at 20%: the deploy returns with the canary ready and in the split.
    result = deploy(cluster, v2_url, "iris", canary=20)
    stored = isvc(cluster, "iris")
    v2 = storage(stored)
    assert v2 != v1 and stored["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert stored["metadata"]["annotations"][PREVIOUS] == v1
    assert traffic(stored) == {r2: 20, r1: 80}
    assert [(t["revision"], t["percent"], t["role"]) for t in result.split["traffic"]] == [
        (r2, 20, "canary"),
        (r1, 80, "previous"),
    ]
    assert [t["storage_uri"] for t in result.split["traffic"]] == [v2, v1]

    # Requests really split, and both revisions answer.
    predict(result.url, 60)
    split_counts = routed(cluster, "iris")
    assert split_counts[r1] > split_counts[r2] > 0

    # status shows the split and both models, human and JSON.
    data = status_json(env, "iris")
    assert data["split"]["canary_traffic_percent"] == 20
    assert {
        (t["revision"], t["percent"], t["storage_uri"], t["ready"])
        for t in data["split"]["traffic"]
    } == {
        (r2, 20, v2, True),
        (r1, 80, v1, True),
    }
    human = run_cli("status", "iris", env=env)
    assert human.code == 0 and "canary:          20%" in human.stdout
    assert f" 20% {r2}" in human.stdout and f" 80% {r1}" in human.stdout and v1 in human.stdout

    # Promote: all traffic on v2, canaryTrafficPercent gone, then idempotent.
    promoted = run_cli("promote", "iris", "--output", "json", env=env)
    assert promoted.code == 0, promoted.stderr
    stored = isvc(cluster, "iris")
    assert "canaryTrafficPercent" not in stored["spec"]["predictor"]
    assert storage(stored) == v2 and traffic(stored) == {r2: 100}
    component = stored["status"]["components"]["predictor"]
    assert component["latestRolledoutRevision"] == r2
    assert component["previousRolledoutRevision"] == r1
    before = routed(cluster, "iris")
    predict(result.url, 10)
    after = routed(cluster, "iris")
    assert after[r2] - before[r2] == 10 and after[r1] == before[r1]
    generation = stored["metadata"]["generation"]
    again = run_cli("promote", "iris", env=env)
    assert again.code == 0 and "nothing to do" in again.stdout, again.stderr
    assert isvc(cluster, "iris")["metadata"]["generation"] == generation

    # A later deploy of the same model does not fight promote (same field manager) and keeps
    # the record of the previous model.
    same = deploy(cluster, v2_url, "iris")
    assert same.changed == [] and isvc(cluster, "iris")["metadata"]["annotations"][PREVIOUS] == v1

    # Rollback after the promote: the previous model back in the spec and serving.
    rolled = run_cli("rollback", "iris", env=env)
    assert rolled.code == 0, rolled.stderr
    assert "rolled back" in rolled.stdout and v1 in rolled.stdout
    stored = isvc(cluster, "iris")
    assert storage(stored) == v1 and "canaryTrafficPercent" not in stored["spec"]["predictor"]
    latest = stored["status"]["components"]["predictor"]["latestCreatedRevision"]
    assert latest not in (r1, r2) and traffic(stored) == {latest: 100}
    assert stored["status"]["conditions"][-1]["status"] == "True"
    before = routed(cluster, "iris")
    predict(result.url, 5)
    assert routed(cluster, "iris")[latest] - before[latest] == 5
    generation = stored["metadata"]["generation"]
    again = run_cli("rollback", "iris", env=env)
    assert again.code == 0 and "nothing to do" in again.stdout, again.stderr
    assert isvc(cluster, "iris")["metadata"]["generation"] == generation

    # A canary rolled back while in progress: the traffic leaves it, v1's model stays.
    deploy(cluster, v3_url, "iris", canary=30)
    assert isvc(cluster, "iris")["metadata"]["annotations"][PREVIOUS] == v1
    rolled = run_cli("rollback", "iris", "--output", "json", env=env)
    assert rolled.code == 0, rolled.stderr
    stored = isvc(cluster, "iris")
    assert storage(stored) == v1 and json.loads(rolled.stdout)["changed"] is True
    newest = stored["status"]["components"]["predictor"]["latestCreatedRevision"]
    assert traffic(stored) == {newest: 100}
    # ... and a promote now has no canary: the bad model cannot come back.
    assert run_cli("promote", "iris", env=env).code == 0
    assert storage(isvc(cluster, "iris")) == v1


def test_first_deploy_with_a_canary_says_the_whole_traffic(s3_model, cluster: Cluster) -> None:  # type: ignore[no-untyped-def]
    """With no revision rolled out before, KServe gives the new one all the traffic."""
    result = deploy(cluster, s3_model("sklearn_pickle"), "fresh", canary=20)
    assert [(t["percent"], t["role"]) for t in result.split["traffic"]] == [(100, "current")]
    # Both of KServe's targets resolve to the one revision there is.
    component = isvc(cluster, "fresh")["status"]["components"]["predictor"]
    assert {t["revisionName"] for t in component["traffic"]} == {"fresh-predictor-00001"}
    assert sum(t["percent"] for t in component["traffic"]) == 100


def test_someone_elses_service_is_not_promoted(s3: S3Server, s3_model, cluster: Cluster) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster)
    deploy(cluster, s3_model("sklearn_pickle"), "theirs")
    deploy(cluster, s3_model("sklearn_pickle"), "theirs", canary=10)
    stored = isvc(cluster, "theirs")
    stored["metadata"]["labels"] = {}  # as if someone else had made it
    cluster.api.put_object("inferenceservices", stored)  # type: ignore[attr-defined]
    # KServe copies labels onto the revision template: the change rolls out a new revision.
    assert cluster.api.wait_for_callbacks(60)  # type: ignore[attr-defined]
    generation = isvc(cluster, "theirs")["metadata"]["generation"]
    for command in ("promote", "rollback"):
        refused = run_cli(command, "theirs", env=env)
        assert refused.code == 2 and "nothing was changed; pass --force" in refused.stderr
    assert isvc(cluster, "theirs")["metadata"]["generation"] == generation
    assert isvc(cluster, "theirs")["spec"]["predictor"]["canaryTrafficPercent"] == 10

    forced = run_cli("promote", "theirs", "--force", env=env)
    assert forced.code == 0, forced.stderr
    assert "canaryTrafficPercent" not in isvc(cluster, "theirs")["spec"]["predictor"]


def test_unknown_service_and_bad_action(s3: S3Server, cluster: Cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster)
    missing = run_cli("promote", "nope", env=env)
    assert missing.code == 2 and "no InferenceService default/nope" in missing.stderr
    bad = run_cli("run", env={**env, "FUSEML_ACTION": "promot"})
    assert bad.code == 2 and "FUSEML_ACTION='promot' is unknown" in bad.stderr


def test_the_step_promotes_with_fuseml_action(
    s3: S3Server, s3_model, cluster: Cluster, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster)
    deploy(cluster, s3_model("sklearn_pickle"), "stepped")
    deploy(cluster, s3_model("sklearn_pickle"), "stepped", canary=50)
    step_env = {
        **env,
        "FUSEML_ACTION": "promote",
        "FUSEML_APP_NAME": "stepped",
        "FUSEML_ENV_WORKFLOW_NAMESPACE": NS,
        "TASK_RESULT": "prediction-url",
        "KSERVE_PREDICTOR_RESULTS_DIR": str(tmp_path),
    }
    done = run_cli("run", env=step_env)
    assert done.code == 0, done.stderr
    stored = isvc(cluster, "stepped")
    assert traffic(stored) == {"stepped-predictor-00002": 100}
    written = (tmp_path / "prediction-url").read_text()
    assert written == stored["status"]["url"] + "/v1/models/stepped:predict"
