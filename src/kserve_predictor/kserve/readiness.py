"""When a rollout really serves: the rule every wait, ``status``, ``promote`` and ``rollback``
use, as pure functions of the InferenceService and its predictor pods.

KServe's status cannot be read on its own. ``status.observedGeneration`` is the child's counter,
copied (Knative: the Knative Service's, ``PropagateStatus``; Standard: the Deployment's,
``PropagateRawStatus``, pkg/apis/serving/v1beta1/inference_service_status.go), and the first
reconcile after a change copies the child's status from *before* the change (Knative:
reconcilers/knative/ksvc_reconciler.go returns the existing Service's status after its Update;
Standard: reconcilers/deployment/deployment_reconciler.go, "Use existingDep"). So right after an
apply the InferenceService can say Ready=True about the previous revision, with a counter that
drifts ahead of or behind ``metadata.generation`` (an upgrade rewriting the child, a
metadata-only change, HPA scaling). The counter is a progress hint only.

What identifies a rollout is an annotation: every apply that changes what a pod runs stamps a
new ``kserve-predictor/rollout-id`` on ``spec.predictor.annotations``, which KServe copies onto
the Knative revision template or the Deployment's pod template (components/predictor.go), so
only the new pods carry it. Ready then means:

- Knative mode: Ready=True; latestCreatedRevision == latestReadyRevision, and not the revision
  seen before the apply when the apply made a new one; a Ready pod of that revision carries
  the rollout id; the traffic entry with ``latestRevision: true`` names that revision with the
  percent asked.
- Standard mode (no revisions): Ready=True; every live predictor pod carries the rollout id
  (no pod of the previous ReplicaSet left) and at least ``minReplicas`` (default 1) are Ready.
  KServe v0.15 and v0.20+ keep Ready=True for the whole rolling update, v0.16 to v0.19 report
  Unknown while the Deployment is Progressing: the pods decide in both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kserve_predictor.kserve.isvc import (
    canary_percent,
    latest_created,
    predictor_spec,
    predictor_status,
)

ROLLOUT_ID = "kserve-predictor/rollout-id"
REVISION_LABEL = "serving.knative.dev/revision"
COMPONENT_LABEL = "component"  # KServe's constants.KServiceComponentLabel
# KServe's modelStatus.transitionStatus values that no amount of waiting will fix.
TERMINAL_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}
# Pod states that mean the predictor will not start without a change.
TERMINAL_POD_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
}


CREATING_REVISION = "waiting for KServe to create the new revision"
READING_PODS = "reading the predictor pods"
"""What a verdict waits on when only the pods it was not given can decide."""


def new_rollout_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Expectation:
    """What "this rollout serves" means for one wait (or one ``status``)."""

    rollout_id: str
    """The id the new pods carry; '' for a service no deploy of ours stamped (the status and
    the revisions then decide alone)."""
    previous_revision: str = ""
    """latestCreatedRevision before the apply, when the apply made a new revision ('' when it
    did not, or when there was none)."""
    latest_percent: int | None = 100
    """The traffic percent the latest revision must have (Knative mode); None: not checked."""
    min_replicas: int = 1
    """Ready pods needed in Standard mode."""
    generation: int = 0
    """metadata.generation written (a progress hint in messages, never a condition)."""
    status_before: str = ""
    """The fingerprint of the status before the apply: a failure in a status KServe has not
    rewritten since is the previous rollout's."""

    @classmethod
    def of_live(cls, isvc: dict[str, Any]) -> Expectation:
        """What the live spec asks for, with no apply behind it (``status``)."""
        canary = canary_percent(isvc)
        return cls(
            rollout_id=rollout_id(isvc),
            latest_percent=100 if canary is None else canary,
            min_replicas=min_replicas(isvc),
            generation=int((isvc.get("metadata") or {}).get("generation") or 0),
        )


@dataclass(frozen=True)
class Verdict:
    """``ready``; else ``failure`` (terminal: waiting will not help) or ``waiting`` (what is
    still missing, for progress lines and the timeout's message)."""

    ready: bool
    waiting: str = ""
    failure: str = ""


# --- readings of the InferenceService ------------------------------------------------------


def rollout_id(isvc: dict[str, Any]) -> str:
    return str((predictor_spec(isvc).get("annotations") or {}).get(ROLLOUT_ID) or "")


def min_replicas(isvc: dict[str, Any]) -> int:
    value = predictor_spec(isvc).get("minReplicas")
    return 1 if value is None else max(int(value), 1)  # a Ready rollout has a pod


def is_knative(isvc: dict[str, Any]) -> bool:
    """Knative mode: the recorded mode says so (status.deploymentMode, >= 0.15, else the
    annotation), or, when neither does, the status names revisions."""
    from kserve_predictor.settings.serving import KNATIVE, STANDARD, normal_mode, recorded_mode

    mode = normal_mode(recorded_mode(isvc))
    if mode in (KNATIVE, STANDARD):
        return mode == KNATIVE
    return bool(latest_created(isvc))


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def ready_condition(isvc: dict[str, Any]) -> bool:
    found = condition(isvc.get("status") or {}, "Ready") or {}
    return found.get("status") == "True"


def latest_traffic(isvc: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (t for t in predictor_status(isvc).get("traffic") or [] if t.get("latestRevision")), None
    )


# --- readings of the pods ------------------------------------------------------------------


def live_predictor_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The predictor's pods that are not being deleted (a transformer's are left out)."""
    return [
        p
        for p in pods
        if not _meta(p).get("deletionTimestamp")
        and (_meta(p).get("labels") or {}).get(COMPONENT_LABEL, "predictor") == "predictor"
    ]


def pod_ready(pod: dict[str, Any]) -> bool:
    found = condition(pod.get("status") or {}, "Ready") or {}
    return found.get("status") == "True"


def carries(pod: dict[str, Any], rollout: str) -> bool:
    return bool(rollout) and (_meta(pod).get("annotations") or {}).get(ROLLOUT_ID) == rollout


def of_rollout(pods: list[dict[str, Any]] | None, expect: Expectation) -> list[dict[str, Any]]:
    """The pods this rollout started (all live predictor pods when it has no id)."""
    live = live_predictor_pods(pods or [])
    return [p for p in live if carries(p, expect.rollout_id)] if expect.rollout_id else live


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


# --- the rule ------------------------------------------------------------------------------


def judge(isvc: dict[str, Any], expect: Expectation, pods: list[dict[str, Any]] | None) -> Verdict:
    """Does the rollout ``expect`` describes serve? ``pods``: the InferenceService's pods (None
    when not read yet: a status that passes everything else asks for them)."""
    knative = is_knative(isvc)
    if knative and expect.latest_percent == 0 and not expect.previous_revision:
        # Traffic only, none of it to the latest revision (rollback's first step): done when
        # the rolled-out revisions carry it all. The latest revision may be the one that failed
        # to load; its failure and its pods are what this step routes around, not its concern.
        missing = _off_latest(isvc)
        return Verdict(not missing, waiting=missing)
    failure = _status_failure(isvc, expect, knative)
    if failure:
        return Verdict(False, failure=failure)
    missing = (_knative_missing if knative else _standard_missing)(isvc, expect, pods)
    return Verdict(not missing, waiting=missing)


def _off_latest(isvc: dict[str, Any]) -> str:
    component = predictor_status(isvc)
    created = latest_created(isvc)
    traffic = component.get("traffic") or []
    latest = sum(int(t.get("percent") or 0) for t in traffic
                 if t.get("latestRevision") or t.get("revisionName") == created)  # fmt: skip
    others = sum(int(t.get("percent") or 0) for t in traffic
                 if not t.get("latestRevision") and t.get("revisionName") != created)  # fmt: skip
    if latest or others != 100:
        return f"waiting for the traffic to leave {created or 'the latest revision'}"
    return ""


def _status_failure(isvc: dict[str, Any], expect: Expectation, knative: bool) -> str:
    """A terminal failure the status reports about *this* rollout. A status not yet rewritten
    since the apply, or a stale copy still naming the previous revision, describes what ran
    before, whose failure is not this one's."""
    status = isvc.get("status") or {}
    if (status.get("modelStatus") or {}).get("transitionStatus") not in TERMINAL_TRANSITIONS:
        return ""
    if expect.status_before and fingerprint(status) == expect.status_before:
        return ""
    if knative and expect.previous_revision and latest_created(isvc) == expect.previous_revision:
        return ""
    return describe_status(isvc)


def fingerprint(status: dict[str, Any] | None) -> str:
    """A digest of a status, to tell whether KServe has rewritten it since."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(status or {}, sort_keys=True).encode()).hexdigest()[:16]


def _knative_missing(
    isvc: dict[str, Any], expect: Expectation, pods: list[dict[str, Any]] | None
) -> str:
    component = predictor_status(isvc)
    created = latest_created(isvc)
    if not created or (expect.previous_revision and created == expect.previous_revision):
        return CREATING_REVISION
    if component.get("latestReadyRevision") != created:
        return f"waiting for revision {created} to become ready"
    if not ready_condition(isvc):
        return "waiting for the Ready condition"
    if expect.latest_percent is not None:
        latest = latest_traffic(isvc) or {}
        routed = int(latest.get("percent") or 0) if latest else None
        if latest.get("revisionName") != created or routed != expect.latest_percent:
            now = f"{routed}% on {latest.get('revisionName')}" if latest else "no route yet"
            return f"waiting for {expect.latest_percent}% of the traffic on {created} ({now})"
    if pods is None:
        return READING_PODS
    serving = [
        p
        for p in of_rollout(pods, expect)
        if (_meta(p).get("labels") or {}).get(REVISION_LABEL) == created and pod_ready(p)
    ]
    if not serving:
        return f"waiting for a Ready pod of revision {created}" + _of_rollout_text(expect)
    return ""


def _standard_missing(
    isvc: dict[str, Any], expect: Expectation, pods: list[dict[str, Any]] | None
) -> str:
    if not ready_condition(isvc):
        return "waiting for the Ready condition"
    if pods is None:
        return READING_PODS
    live = live_predictor_pods(pods)
    ours = of_rollout(live, expect)
    older = len(live) - len(ours)
    ready = sum(1 for p in ours if pod_ready(p))
    if ready < expect.min_replicas:
        return f"waiting for {expect.min_replicas} Ready pod(s){_of_rollout_text(expect)} ({ready} so far)"
    if older:
        return f"waiting for {older} pod(s) of the previous rollout to go"
    return ""


def _of_rollout_text(expect: Expectation) -> str:
    return f" with rollout id {expect.rollout_id}" if expect.rollout_id else ""


def describe_status(isvc: dict[str, Any]) -> str:
    """What the status says: failing conditions and the model's last failure."""
    status = isvc.get("status") or {}
    parts = []
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if failure:
        text = f"{failure.get('reason', 'failure')}: {failure.get('message', '')}".strip(": ")
        if failure.get("exitCode") is not None:
            text += f" (exit code {failure['exitCode']})"
        parts.append(text)
    for found in status.get("conditions") or []:
        if found.get("status") == "False":
            detail = found.get("message") or found.get("reason") or ""
            parts.append(f"{found.get('type')}=False" + (f" ({detail})" if detail else ""))
    return "; ".join(parts) or "no condition reported yet"


def pod_failure(pods: list[dict[str, Any]] | None, terminal_only: bool = True) -> str | None:
    """Why the predictor pods cannot run (image pull, crash loop, unschedulable); None when
    they look fine or could not be read. ``terminal_only=False``: any waiting reason."""
    reasons = []
    for pod in pods or []:
        status = pod.get("status") or {}
        scheduled = condition(status, "PodScheduled") or {}
        if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            reasons.append(f"Unschedulable: {scheduled.get('message', '')}".strip(": "))
        statuses = status.get("containerStatuses", []) + status.get("initContainerStatuses", [])
        for container in statuses:
            for state_name in ("waiting", "terminated"):
                state = (container.get("state") or {}).get(state_name) or {}
                reason = state.get("reason")
                if reason == "Completed":  # an init container that did its job
                    continue
                if reason and (not terminal_only or reason in TERMINAL_POD_REASONS):
                    message = state.get("message", "")
                    reasons.append(f"{container.get('name')}: {reason} {message}".strip())
    return "; ".join(dict.fromkeys(reasons)) or None


# --- what an apply asks for ----------------------------------------------------------------


def stamp(isvc: dict[str, Any], rollout: str) -> None:
    """Write ``rollout`` as the predictor's rollout id (KServe copies it onto the pods)."""
    predictor = isvc["spec"].setdefault("predictor", {})
    predictor.setdefault("annotations", {})[ROLLOUT_ID] = rollout


def template_view(isvc: dict[str, Any] | None) -> str:
    """What makes new pods when it changes: the predictor without canaryTrafficPercent (a
    traffic setting) and without the rollout id, and the InferenceService's labels and
    annotations, which KServe copies onto the revision or pod template too
    (components/predictor.go), so a metadata-only change rolls out new pods."""
    import json

    if isvc is None:
        return ""
    predictor = predictor_spec(isvc)
    predictor.pop("canaryTrafficPercent", None)
    notes = dict(predictor.get("annotations") or {})
    notes.pop(ROLLOUT_ID, None)
    predictor["annotations"] = notes
    meta = isvc.get("metadata") or {}
    return json.dumps(
        [predictor, meta.get("labels") or {}, meta.get("annotations") or {}], sort_keys=True
    )


def expect_after(
    live: dict[str, Any] | None, stored: dict[str, Any], new_pods: bool
) -> Expectation:
    """What the apply that turned ``live`` (None: nothing) into ``stored`` must lead to;
    ``new_pods``: it changed the template (template_view), so a new revision must come."""
    canary = canary_percent(stored)
    return Expectation(
        rollout_id=rollout_id(stored),
        previous_revision=latest_created(live) if live is not None and new_pods else "",
        # With a canary the latest revision ends with that percent, even the first one: KServe
        # routes it all until it is rolled out, then splits it with itself (ksvc_reconciler.go).
        latest_percent=100 if canary is None else canary,
        min_replicas=min_replicas(stored),
        generation=int((stored.get("metadata") or {}).get("generation") or 0),
        status_before=fingerprint((live or {}).get("status")) if live is not None else "",
    )
