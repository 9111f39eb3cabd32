"""The rule that says a rollout serves (readiness.py), one condition at a time, on statuses and
pods shaped as KServe and the kubelet write them; and the names KServe releases read
(kserve_release.py). The end-to-end cases are in test_rollout_truth.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kserve_predictor.kserve import readiness
from kserve_predictor.kserve.readiness import (
    CREATING_REVISION,
    READING_PODS,
    ROLLOUT_ID,
    Expectation,
    expect_after,
    judge,
    template_view,
)
from kserve_predictor.kserve.release import mode_spelling, release_of

R1, R2 = "iris-predictor-00001", "iris-predictor-00002"


def knative(created: str = R2, ready: str = R2, percent: int = 100, **status: Any) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": "iris", "generation": 2},
        "spec": {"predictor": {"annotations": {ROLLOUT_ID: "new"}}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "components": {
                "predictor": {
                    "latestCreatedRevision": created,
                    "latestReadyRevision": ready,
                    "traffic": [
                        {"revisionName": ready, "latestRevision": True, "percent": percent}
                    ],
                }
            },
            **status,
        },
    }


def standard(**status: Any) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": "iris", "generation": 2},
        "spec": {"predictor": {"annotations": {ROLLOUT_ID: "new"}}},
        "status": {
            "deploymentMode": "Standard",
            "conditions": [{"type": "Ready", "status": "True"}],
            **status,
        },
    }


def pod(
    rollout: str = "new",
    revision: str = R2,
    ready: bool = True,
    component: str = "predictor",
    deleting: bool = False,
) -> dict:  # type: ignore[type-arg]
    meta: dict[str, Any] = {
        "name": f"{revision}-{rollout}",
        "labels": {"component": component, "serving.knative.dev/revision": revision},
        "annotations": {ROLLOUT_ID: rollout},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


NEW = Expectation(rollout_id="new", previous_revision=R1)


def test_knative_serves_when_every_condition_holds() -> None:
    assert judge(knative(), NEW, [pod()]).ready


@pytest.mark.parametrize(
    "isvc, pods, waiting",
    [
        (knative(created=R1, ready=R1), [pod(revision=R1)], CREATING_REVISION),  # the stale copy
        (knative(ready=R1), [pod()], f"waiting for revision {R2} to become ready"),
        (knative(percent=20), [pod()], f"waiting for 100% of the traffic on {R2}"),
        (knative(), None, READING_PODS),
        (knative(), [pod(rollout="old")], f"waiting for a Ready pod of revision {R2}"),
        (knative(), [pod(ready=False)], f"waiting for a Ready pod of revision {R2}"),
        (knative(), [pod(revision=R1)], f"waiting for a Ready pod of revision {R2}"),
        (knative(), [pod(deleting=True)], f"waiting for a Ready pod of revision {R2}"),
    ],
    ids=["stale", "not-ready-revision", "traffic", "no-pods-read", "old-id", "pod-not-ready",
         "other-revision", "pod-deleting"],
)  # fmt: skip
def test_knative_waits_for_what_is_missing(isvc: dict, pods: Any, waiting: str) -> None:  # type: ignore[type-arg]
    verdict = judge(isvc, NEW, pods)
    assert not verdict.ready and verdict.waiting.startswith(waiting), verdict


def test_knative_needs_the_ready_condition() -> None:
    isvc = knative()
    isvc["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    assert judge(isvc, NEW, [pod()]).waiting == "waiting for the Ready condition"


def test_the_percent_asked_for_a_canary() -> None:
    canary = Expectation(rollout_id="new", previous_revision=R1, latest_percent=20)
    assert judge(knative(percent=20), canary, [pod()]).ready
    assert not judge(knative(percent=100), canary, [pod()]).ready


def test_standard_serves_when_only_the_new_pods_are_left() -> None:
    assert judge(standard(), NEW, [pod(revision="")]).ready


@pytest.mark.parametrize(
    "pods, min_replicas, waiting",
    [
        ([pod(rollout="old", revision="")], 1, "waiting for 1 Ready pod(s) with rollout id new"),
        ([pod(revision=""), pod(rollout="old", revision="")], 1, "waiting for 1 pod(s) of the previous rollout to go"),
        ([pod(revision=""), pod(revision="", ready=False)], 2, "waiting for 2 Ready pod(s)"),
        (None, 1, READING_PODS),
    ],
    ids=["only-old", "old-left", "min-replicas", "no-pods-read"],
)  # fmt: skip
def test_standard_waits_for_the_new_pods(pods: Any, min_replicas: int, waiting: str) -> None:
    expect = Expectation(rollout_id="new", min_replicas=min_replicas)
    verdict = judge(standard(), expect, pods)
    assert not verdict.ready and verdict.waiting.startswith(waiting), verdict


def test_standard_leaves_out_deleting_and_other_component_pods() -> None:
    others = [
        pod(rollout="old", revision="", deleting=True),  # the old ReplicaSet's, terminating
        pod(rollout="", revision="", component="transformer"),
    ]
    assert judge(standard(), NEW, [pod(revision=""), *others]).ready


def test_standard_needs_the_ready_condition() -> None:
    isvc = standard()
    isvc["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    assert not judge(isvc, NEW, [pod(revision="")]).ready


FAILED = {
    "conditions": [{"type": "Ready", "status": "False"}],
    "modelStatus": {
        "transitionStatus": "BlockedByFailedLoad",
        "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no such file"},
    },
}


def test_a_failure_is_this_rollouts_only_once_kserve_wrote_about_it() -> None:
    before = knative(created=R1, ready=R1, **FAILED)
    unchanged = Expectation(rollout_id="new", status_before=readiness.fingerprint(before["status"]))
    assert judge(before, unchanged, None).failure == ""  # nothing rewritten since the apply
    stale = knative(created=R1, ready=R1, **FAILED, observedGeneration=9)
    assert judge(stale, NEW, None).failure == ""  # the copy still names the previous revision
    failed = knative(created=R2, ready=R1, **FAILED)
    assert judge(failed, NEW, None).failure == "ModelLoadFailed: no such file; Ready=False"


def test_observed_generation_neither_passes_nor_blocks() -> None:
    for observed in (1, 2, 99):
        assert judge(knative(observedGeneration=observed), NEW, [pod()]).ready
        stale = knative(created=R1, ready=R1, observedGeneration=observed)
        assert not judge(stale, NEW, [pod(revision=R1)]).ready


def test_what_makes_new_pods() -> None:
    live = knative()
    live["metadata"]["labels"] = {"fuseml/codeset": "one"}
    canary = copy.deepcopy(live)
    canary["spec"]["predictor"]["canaryTrafficPercent"] = 10
    canary["spec"]["predictor"]["annotations"][ROLLOUT_ID] = "another"
    assert template_view(canary) == template_view(live)  # traffic and the id: no new pods
    relabelled = copy.deepcopy(live)
    relabelled["metadata"]["labels"] = {"fuseml/codeset": "two"}
    assert template_view(relabelled) != template_view(live)  # copied onto the template
    model = copy.deepcopy(live)
    model["spec"]["predictor"]["model"] = {"storageUri": "s3://b/other"}
    assert template_view(model) != template_view(live)


def test_expect_after_an_apply() -> None:
    live = knative(created=R1, ready=R1)
    stored = copy.deepcopy(live)
    stored["spec"]["predictor"]["canaryTrafficPercent"] = 20
    stored["metadata"]["generation"] = 3
    made = expect_after(live, stored, new_pods=True)
    assert (made.rollout_id, made.previous_revision, made.latest_percent) == ("new", R1, 20)
    assert made.generation == 3 and made.status_before
    moved = expect_after(live, stored, new_pods=False)
    assert moved.previous_revision == ""  # no new revision to wait for: the traffic moves
    assert expect_after(None, stored, new_pods=True).previous_revision == ""


def test_of_live_reads_the_spec() -> None:
    isvc = knative()
    isvc["spec"]["predictor"].update(canaryTrafficPercent=30, minReplicas=3)
    found = Expectation.of_live(isvc)
    assert (found.rollout_id, found.latest_percent, found.min_replicas) == ("new", 30, 3)


def runtime(image: str) -> dict:  # type: ignore[type-arg]
    return {"spec": {"containers": [{"image": image}]}}


def test_the_release_from_the_stock_runtime_images() -> None:
    assert release_of([runtime("kserve/sklearnserver:v0.15.2")]) == (0, 15)
    assert release_of([runtime("docker.io/kserve/lgbserver:v0.20.0")]) == (0, 20)
    assert release_of([runtime("kserve/sklearnserver:v0.16.0-rc1")]) == (0, 16)
    assert release_of([runtime("nvcr.io/nvidia/tritonserver:23.05-py3")]) is None
    assert release_of([runtime("kserve/sklearnserver:simulated")]) is None
    assert release_of([]) is None


@pytest.mark.parametrize(
    "mode, release, recorded, written",
    [
        ("Standard", (0, 15), None, "RawDeployment"),
        ("Knative", (0, 14), None, "Serverless"),
        ("Standard", (0, 16), None, "Standard"),
        ("Standard", (0, 20), None, "Standard"),
        ("Standard", None, None, "Standard"),
        ("Standard", None, "RawDeployment", "RawDeployment"),  # the spelling the status keeps
        ("Standard", (0, 15), "Standard", "Standard"),
    ],
)
def test_the_mode_is_spelled_as_the_cluster_reads_it(
    mode: str, release: Any, recorded: Any, written: str
) -> None:
    existing = {"status": {"deploymentMode": recorded}} if recorded else None
    assert mode_spelling(mode, release, existing) == written
