"""What an InferenceService's rollout is doing now, in one line, from what KServe and the
kubelet report; and a log of its changes while a deployment waits.

KServe (pkg/apis/serving/v1beta1/inference_service_status.go, PropagateModelStatus) sets
``status.modelStatus.states.targetModelState`` to Pending while there is no predictor pod,
Loading while the pod's storage-initializer init container runs, Pending again while the
kserve-container starts, and Loaded once Ready; in Knative mode
``status.components.predictor.latestCreatedRevision`` names the revision of the spec. The pods
say more (the Role may list them): which container waits and why (ContainerCreating covers the
image pull, PodInitializing the init containers, ErrImagePull a pull that failed), and whether
the model server runs but is not ready yet (loading the model). When the pods cannot be read,
the model state alone is told.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kserve_predictor.kserve.isvc import latest_created
from kserve_predictor.kserve.readiness import (
    CREATING_REVISION,
    REVISION_LABEL,
    Expectation,
    condition,
    of_rollout,
)

STORAGE_INITIALIZER = "storage-initializer"
MODEL_SERVER = "kserve-container"
READY_RANK = 9
_WAITING = {  # the kubelet's reasons, said for someone who has not memorised them
    "ContainerCreating": "being created (pulling its image)",
    "PodInitializing": "waiting for the init containers",
    "ErrImagePull": "cannot pull its image",
    "ImagePullBackOff": "cannot pull its image (retrying)",
}


@dataclass(frozen=True)
class Stage:
    """Where a rollout is; ``rank`` orders the stages of one pod's start."""

    rank: int
    text: str
    pod: str = ""
    """The pod and its restarts the stage was read from ('' when from the status alone)."""


def stage(
    isvc: dict[str, Any],
    expect: Expectation,
    pods: list[dict[str, Any]] | None,
    missing: str,
) -> Stage:
    """The rollout's stage; ``pods`` are the InferenceService's pods (None: not read), and
    ``missing`` what readiness.judge still waits for ('' once it serves)."""
    status = isvc.get("status") or {}
    if not missing:
        return Stage(READY_RANK, "ready" + (f" at {status['url']}" if status.get("url") else ""))
    if missing == CREATING_REVISION:
        return Stage(0, missing)
    mine = of_rollout(pods, expect) if pods is not None else None
    pod = _current_pod(mine or [], latest_created(isvc))
    if pod is not None:
        found = _pod_stage(pod)
        if found is not None:
            return found
    states = (status.get("modelStatus") or {}).get("states") or {}
    target = states.get("targetModelState") or ""
    if target == "Loading":
        return Stage(3, "storage initializer downloading the model")
    if target == "FailedToLoad":
        return Stage(8, "the model failed to load")
    if pod is None and target in ("", "Pending"):
        if mine is None:  # the pods were not read: what KServe says is all there is
            return Stage(1, "model Pending (the predictor is starting)")
        return Stage(1, "waiting for the predictor pod to be created")
    return Stage(7, missing)


def _current_pod(pods: list[dict[str, Any]], latest: str) -> dict[str, Any] | None:
    """The pod KServe reads too: the first of the latest revision's (all pods when unknown),
    leaving out those being deleted (an old revision going away)."""
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    if latest:
        of_latest = [p for p in live if _labels(p).get(REVISION_LABEL) == latest]
        live = of_latest or [p for p in live if REVISION_LABEL not in _labels(p)]
    live.sort(key=lambda p: str((p.get("metadata") or {}).get("name")))
    return live[0] if live else None


def _pod_stage(pod: dict[str, Any]) -> Stage | None:
    name = str((pod.get("metadata") or {}).get("name") or "")
    status = pod.get("status") or {}
    containers = {c.get("name"): c for c in status.get("containerStatuses") or []}
    inits = {c.get("name"): c for c in status.get("initContainerStatuses") or []}
    restarts = sum(int(c.get("restartCount") or 0) for c in [*containers.values(), *inits.values()])
    key = f"{name}#{restarts}"
    scheduled = condition(status, "PodScheduled") or {}
    if scheduled.get("status") == "False":
        why = scheduled.get("message") or scheduled.get("reason") or "no node fits"
        return Stage(2, f"pod {name} waits for a node: {why}", key)
    init = inits.get(STORAGE_INITIALIZER)
    server = containers.get(MODEL_SERVER)
    init_state = (init or {}).get("state") or {}
    if init is not None and "terminated" not in init_state:
        if "running" in init_state:
            return Stage(3, "storage initializer downloading the model", key)
        reason = (init_state.get("waiting") or {}).get("reason") or "waiting"
        return Stage(2, f"pod {name}: storage initializer {_WAITING.get(reason, reason)}", key)
    if init is not None and (init_state["terminated"].get("reason") or "") != "Completed":
        message = init_state["terminated"].get("message") or init_state["terminated"].get("reason")
        return Stage(3, f"storage initializer failed: {message}", key)
    if server is None:
        return None
    state = server.get("state") or {}
    if "waiting" in state:
        reason = state["waiting"].get("reason") or "waiting"
        return Stage(4, f"pod {name}: model server {_WAITING.get(reason, reason)}", key)
    if "running" in state and not server.get("ready"):
        return Stage(5, "model server started; loading the model", key)
    if "terminated" in state:
        reason = state["terminated"].get("reason") or "exited"
        return Stage(5, f"model server exited ({reason})", key)
    return None  # running and ready: the routes are what is left (the status says which)


def _labels(pod: dict[str, Any]) -> dict[str, str]:
    return dict((pod.get("metadata") or {}).get("labels") or {})


class StageLog:
    """Logs each change of a rollout's stage once, at INFO, as it is seen.

    A stage behind the last one logged, read from the same pod without a restart, is an older
    status catching up with pods read later: not logged. A new pod, a restart or a new
    revision is a real change and is.
    """

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.log = logger
        self.lines: list[str] = []
        self._last: Stage | None = None
        self._revision = ""

    def update(
        self,
        isvc: dict[str, Any],
        expect: Expectation,
        pods: list[dict[str, Any]] | None,
        missing: str,
    ) -> None:
        now = stage(isvc, expect, pods, missing)
        created = latest_created(isvc)
        if created != self._revision and created != expect.previous_revision:
            self._revision = created
            if created and now.rank < READY_RANK:  # a revision already serving is no news
                self._emit(f"revision {created} created")
        last = self._last
        if last is not None:
            if now.text == last.text:
                return
            if now.rank < last.rank and (not now.pod or now.pod == last.pod):
                return
        self._last = now
        self._emit(now.text)

    def _emit(self, text: str) -> None:
        self.lines.append(text)
        self.log.info("%s: %s", self.what, text)
