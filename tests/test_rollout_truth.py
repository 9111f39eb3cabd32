"""Ready means the new model serves (issue 19), against the KServe simulation that copies KServe's
unkind parts: the stale status copied from the child after each change, a child counter that
drifts from metadata.generation, new revisions for metadata-only changes, old pods serving through
a rolling update, Standard-mode Ready per KServe release.

Each case runs twice: once with the previous product (no rollout id, and the wait it had: Ready=True
with observedGeneration >= metadata.generation), to show that wait returning while the previous
revision answers; once with today's, which returns only when the new revision answers. Which
revision answered is counted at the simulated route (Knative's ingress or the Deployment's
Service), one connection per request.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from conftest import Cluster, S3Server

from kserve_predictor.kserve import readiness
from kserve_predictor.kserve.client import Cluster as Client
from kserve_predictor.ops.deploy import deploy
from kserve_predictor.ops.rollout import promote, rollback
from kserve_predictor.settings.groups import ClusterSettings, DeploySettings, S3Settings
from kserve_predictor.settings.serving import ServingOptions

NS = "default"
ROWS = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def old_wait(
    self: Client, namespace: str, name: str, expect: Any, timeout: float, poll: float = 10.0
) -> dict[str, Any]:
    """The wait before issue 19: Ready=True and status.observedGeneration >= metadata.generation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        isvc = self.get("InferenceService", namespace, name) or {}
        status = isvc.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if ready and int(status.get("observedGeneration") or 0) >= isvc["metadata"]["generation"]:
            return isvc
        time.sleep(0.02)
    raise TimeoutError(f"{namespace}/{name} never passed the old wait")


@pytest.fixture(params=["previous", "today"])
def product(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``previous``: no rollout id stamped and the old wait; ``today``: the product as it is."""
    if request.param == "previous":
        monkeypatch.setattr(readiness, "stamp", lambda isvc, rollout: None)
        monkeypatch.setattr(Client, "wait_ready", old_wait)
    return str(request.param)


def settings(
    cluster: Cluster, url: str, name: str, mode: str = "Knative", **options: Any
) -> DeploySettings:
    codeset = options.pop("codeset", "")
    timeout = options.pop("timeout", 120)
    return DeploySettings(
        model_url=url,
        predictor="sklearn",  # sklearnserver, V1, whatever the runtime table says
        app_name=name,
        namespace=NS,
        codeset=codeset,
        s3=S3Settings.from_env(),
        cluster=ClusterSettings(kubeconfig=str(cluster.kubeconfig)),
        timeout=timeout,
        smoke_test=False,
        # The release-tagged runtimes below are in the runtime table, whose verdict on this
        # environment's scikit-learn is not what these tests are about.
        allow_incompatible=True,
        options=ServingOptions(deployment_mode=mode, **options),
    )


def client(cluster: Cluster) -> Client:
    from kserve_predictor.kserve.connection import connect
    from kserve_predictor.settings.groups import ClusterSettings

    return connect(ClusterSettings(str(cluster.kubeconfig)))


def answered_by(cluster: Cluster, name: str, url: str, count: int) -> dict[str, int]:
    """Send ``count`` predictions, one connection each; the revisions that answered them."""
    svc = cluster.controller.service(NS, name)  # type: ignore[attr-defined]
    before = {r.name: r.routed for r in svc.revisions}
    for _ in range(count):
        answer = requests.post(url, json=ROWS, timeout=10)
        assert answer.status_code == 200, answer.text
    after = {r.name: r.routed - before.get(r.name, 0) for r in svc.revisions}
    return {name: n for name, n in after.items() if n}


def revisions(cluster: Cluster, name: str) -> list[str]:
    """The revisions (ReplicaSets in Standard mode) made so far, once the simulation is idle:
    after the previous wait, the new one may not have been made yet."""
    assert cluster.api.wait_for_callbacks(60)  # type: ignore[attr-defined]
    return [r.name for r in cluster.controller.service(NS, name).revisions]  # type: ignore[attr-defined]


@pytest.mark.parametrize("drift", [1, -1])
def test_an_update_with_a_drifted_counter(
    s3: S3Server, s3_model, cluster: Cluster, product: str, drift: int
) -> None:  # type: ignore[no-untyped-def]
    """Ahead (a KServe upgrade rewrote the Knative Service): the previous wait returns on the
    stale copy while the old revision answers. Behind: it never returns. Today's wait ends when
    the new revision answers, either way."""
    first = deploy(settings(cluster, s3_model("sklearn_pickle"), "drift"))
    cluster.controller.drift = drift  # type: ignore[attr-defined]
    update = settings(cluster, s3_model("sklearn_pickle"), "drift", timeout=15)
    if product == "previous" and drift < 0:
        with pytest.raises(TimeoutError):
            deploy(update)
        return
    deploy(update)
    served = answered_by(cluster, "drift", first.prediction_url, 10)
    old, new = revisions(cluster, "drift")
    assert served == ({old: 10} if product == "previous" else {new: 10})


def test_a_metadata_only_update(s3: S3Server, s3_model, cluster: Cluster, product: str) -> None:  # type: ignore[no-untyped-def]
    """A changed label (another codeset) is copied onto the revision template: a new revision
    without a new metadata.generation."""
    url = s3_model("sklearn_pickle")
    first = deploy(settings(cluster, url, "labels", codeset="one"))
    generation = client(cluster).get("InferenceService", NS, "labels")["metadata"]["generation"]  # type: ignore[index]
    deploy(settings(cluster, url, "labels", codeset="two"))
    stored = client(cluster).get("InferenceService", NS, "labels") or {}
    served = answered_by(cluster, "labels", first.prediction_url, 10)
    old, new = revisions(cluster, "labels")
    if product == "previous":
        assert stored["metadata"]["generation"] == generation  # nothing told the old wait
        assert served == {old: 10}
    else:
        assert served == {new: 10}


def seed_release(cluster: Cluster, release: tuple[int, int]) -> None:
    """The ClusterServingRuntimes as that KServe release installs them (image tag vX.Y.0),
    and the simulation following that release's rules."""
    cluster.controller.kserve_version = release  # type: ignore[attr-defined]
    cluster.api.kserve_version = release  # type: ignore[attr-defined]
    for runtime in cluster.api.list_objects("clusterservingruntimes"):  # type: ignore[attr-defined]
        container = runtime["spec"]["containers"][0]
        container["image"] = container["image"].rsplit(":", 1)[0] + f":v{release[0]}.{release[1]}.0"
        cluster.api.put_object("clusterservingruntimes", runtime)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "product, release",
    [("previous", (0, 16)), ("previous", (0, 20)), ("today", (0, 15)), ("today", (0, 16)),
     ("today", (0, 20))],
    indirect=["product"],
    ids=lambda v: f"v{v[0]}.{v[1]}" if isinstance(v, tuple) else v,
)  # fmt: skip
def test_a_standard_mode_rolling_update(
    s3: S3Server, s3_model, cluster: Cluster, product: str, release: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    """v0.15 and v0.20+ keep Ready=True through a rolling update (the old pod is Available),
    v0.16 to v0.19 report Unknown while the Deployment progresses: the previous wait returns
    while the old pod answers on v0.20; today's waits for the new pods on all. On v0.15 the
    mode is written as RawDeployment, the only name that release reads."""
    seed_release(cluster, release)
    first = deploy(settings(cluster, s3_model("sklearn_pickle"), "raw", mode="Standard"))
    deploy(settings(cluster, s3_model("sklearn_pickle"), "raw", mode="Standard"))
    stored = client(cluster).get("InferenceService", NS, "raw") or {}
    pods = [p["metadata"]["name"] for p in cluster.api.list_objects("pods", NS)]  # type: ignore[attr-defined]
    served = answered_by(cluster, "raw", first.prediction_url, 10)
    spelled = "RawDeployment" if release < (0, 16) else "Standard"
    assert stored["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == spelled
    assert stored["status"]["deploymentMode"] == spelled
    old, new = revisions(cluster, "raw")
    fooled = product == "previous" and release == (0, 20)
    assert served == ({old: 10} if fooled else {new: 10})
    if not fooled:  # the old ReplicaSet's pod was gone when the wait ended
        assert pods == [f"{new}-abc12"]


def test_a_canary_then_promote(s3: S3Server, s3_model, cluster: Cluster, product: str) -> None:  # type: ignore[no-untyped-def]
    """With the counter ahead, the previous wait returns a canary deploy before the canary
    takes its share, and a promote before the traffic moved; today's returns each when the
    route sends what the status says."""
    first = deploy(settings(cluster, s3_model("sklearn_pickle"), "canary"))
    cluster.controller.drift = 1  # type: ignore[attr-defined]
    deploy(settings(cluster, s3_model("sklearn_pickle"), "canary", canary_traffic_percent=30))
    served = answered_by(cluster, "canary", first.prediction_url, 40)
    old, new = revisions(cluster, "canary")
    if product == "previous":
        assert served == {old: 40}
    else:
        assert served.get(new, 0) > 0 and served.get(old, 0) > 0  # 30/70 over 40 connections

    promote(client(cluster), NS, "canary", timeout=120)
    served = answered_by(cluster, "canary", first.prediction_url, 20)
    if product == "previous":
        assert served.get(old, 0) > 0  # "promoted" while 70% still went to the old revision
    else:
        assert served == {new: 20}


def test_a_canary_rolled_back(s3: S3Server, s3_model, cluster: Cluster, product: str) -> None:  # type: ignore[no-untyped-def]
    """Rollback's last step sends the traffic to a new revision of the previous model: the
    previous wait returns before it serves; today's when it does."""
    first = deploy(settings(cluster, s3_model("sklearn_pickle"), "back"))
    deploy(settings(cluster, s3_model("sklearn_pickle"), "back", canary_traffic_percent=30))
    cluster.controller.drift = 1  # type: ignore[attr-defined]
    outcome = rollback(client(cluster), NS, "back", timeout=120)
    assert outcome.changed
    served = answered_by(cluster, "back", first.prediction_url, 10)
    _r1, _r2, r3 = revisions(cluster, "back")
    if product == "previous":
        assert r3 not in served  # "rolled back" to r3, which no request reached
    else:
        assert served == {r3: 10}
        stored = client(cluster).get("InferenceService", NS, "back") or {}
        latest = readiness.latest_traffic(stored) or {}
        assert (latest.get("revisionName"), latest.get("percent")) == (r3, 100)


def test_a_release_that_ignores_the_mode_asked_fails_the_run(s3_model, cluster: Cluster) -> None:  # type: ignore[no-untyped-def]
    """KServe v0.15 with runtimes that do not tell the release (custom images): ``Standard``
    is written, v0.15 ignores it and runs the service in its default mode, and records that:
    the run says so instead of reporting a Standard-mode service."""
    from kserve_predictor.errors import UsageError

    cluster.controller.kserve_version = (0, 15)  # type: ignore[attr-defined]
    cluster.api.kserve_version = (0, 15)  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="runs in Knative mode, not the Standard mode asked"):
        deploy(settings(cluster, s3_model("sklearn_pickle"), "ignored", mode="Standard"))
    stored = client(cluster).get("InferenceService", NS, "ignored") or {}
    assert stored["status"]["deploymentMode"] == "Serverless"
