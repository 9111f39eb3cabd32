"""Canary rollouts in KServe's Knative mode: the traffic split, promote and rollback.

KServe splits traffic when ``spec.predictor.canaryTrafficPercent`` is set and a revision was
rolled out before: the latest ready revision gets that percent, the last rolled-out revision
(tag ``prev``) the rest. Removing the field sends everything to the latest revision (promote);
``canaryTrafficPercent: 0`` sends everything back to the previous rolled-out revision.

Rollback restores the previous *model* too, so a later promote cannot re-promote the bad one:
deploy records the storageUri it replaces in the annotation ``PREVIOUS``, and rollback (1) sets
canaryTrafficPercent 0 (traffic back at once, no new revision), (2) sets the previous storageUri
with the percent still 0 (a new revision with the old model starts while the old revision keeps
all traffic), (3) removes the percent (the new revision takes the traffic, ready). Each step is
a server-side apply under deploy's field manager of the fields deploy owns, changed, so a later
deploy neither fights it nor loses a field; each waits for the status to show the step.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from . import readiness
from .cluster import FIELD_MANAGER, Cluster
from .errors import UsageError
from .manifests import implementation_field, storage_uri
from .ownership import refuse_unless_ours

log = logging.getLogger(__name__)

PREVIOUS = "kserve-predictor/previous-storage-uri"
"""The storageUri of the model rolled out before the current spec's (deploy records it)."""
CANARY = "canaryTrafficPercent"
CHANGE = (
    "{what} belongs to {owner}, not to kserve-predictor, so nothing was changed; pass --force "
    "to change it anyway"
)


# --- reading the split -------------------------------------------------------------------


def canary_percent(isvc: dict[str, Any]) -> int | None:
    value = ((isvc.get("spec") or {}).get("predictor") or {}).get(CANARY)
    return None if value is None else int(value)


def previous_model(isvc: dict[str, Any]) -> str:
    return str(((isvc.get("metadata") or {}).get("annotations") or {}).get(PREVIOUS) or "")


def on_revision(isvc: dict[str, Any], revision: str) -> int:
    """Percent of the traffic the status routes to ``revision``."""
    traffic = readiness.predictor_status(isvc).get("traffic") or []
    return sum(int(t.get("percent") or 0) for t in traffic if t.get("revisionName") == revision)


def split(isvc: dict[str, Any]) -> dict[str, Any] | None:
    """The traffic split the status reports, each revision with its model; None when the
    service has no Knative revisions (Standard mode, or not reconciled yet)."""
    component = readiness.predictor_status(isvc)
    if not component.get("latestCreatedRevision"):
        return None
    created = str(component["latestCreatedRevision"])
    ready = str(component.get("latestReadyRevision") or "")
    rolled_out = str(component.get("latestRolledoutRevision") or "")
    current = storage_uri(isvc)
    previous = previous_model(isvc)
    # KServe may name one revision twice (the latest and the "prev" target both resolve to it
    # when nothing else was rolled out): one entry per revision, percents summed.
    percents: dict[str, int] = {}
    tags: dict[str, list[str]] = {}
    for target in component.get("traffic") or []:
        revision = str(target.get("revisionName") or "")
        percents[revision] = percents.get(revision, 0) + int(target.get("percent") or 0)
        tags.setdefault(revision, []).extend([target["tag"]] if target.get("tag") else [])
    entries = []
    for revision, percent in percents.items():
        if revision == created:
            canary = canary_percent(isvc) is not None and percent < 100
            role, model = ("canary" if canary else "current"), current
        elif revision == rolled_out or "prev" in tags[revision]:
            role, model = "previous", previous
        else:
            role, model = "older", ""  # a revision whose model this product did not record
        entries.append(
            {
                "revision": revision,
                "percent": percent,
                "tags": tags[revision],
                "role": role,
                "storage_uri": model,
                # Knative routes only to ready revisions: a revision in the traffic is ready.
                "ready": revision == ready or revision != created,
            }
        )
    return {
        "canary_traffic_percent": canary_percent(isvc),
        "latest_created_revision": created,
        "latest_ready_revision": ready,
        "latest_rolledout_revision": rolled_out,
        "previous_rolledout_revision": str(component.get("previousRolledoutRevision") or ""),
        "storage_uri": current,
        "previous_storage_uri": previous,
        "traffic": entries,
    }


def describe_split(view: dict[str, Any] | None) -> str:
    """One line: ``20% iris-predictor-00002 (canary, s3://…), 80% … (previous, s3://…)``."""
    if not view or not view["traffic"]:
        return "no traffic routed yet"
    return ", ".join(
        f"{t['percent']}% {t['revision']} ({t['role']}"
        + (f", {t['storage_uri']}" if t["storage_uri"] else "")
        + ")"
        for t in view["traffic"]
    )


def fully_on_latest(isvc: dict[str, Any]) -> bool:
    component = readiness.predictor_status(isvc)
    created = str(component.get("latestCreatedRevision") or "")
    return component.get("latestReadyRevision") == created and on_revision(isvc, created) == 100


# --- what deploy records -----------------------------------------------------------------


def model_to_record(existing: dict[str, Any] | None, new_storage_uri: str) -> str:
    """The PREVIOUS annotation a deploy of ``new_storage_uri`` writes ("" for none): the model
    rolled out now, which KServe keeps serving beside a canary and rollback returns to."""
    if existing is None:
        return ""
    recorded = previous_model(existing)
    current = storage_uri(existing)
    percent = canary_percent(existing)
    if percent is not None and percent < 100:
        # A canary is in progress: KServe's rolled-out revision is still the recorded one.
        return recorded
    if current == new_storage_uri:
        return recorded  # the same model again: nothing is replaced
    return current


# --- the applied configuration ----------------------------------------------------------


def applied_config(isvc: dict[str, Any]) -> dict[str, Any]:
    """The fields deploy's field manager owns, with their live values: what a server-side
    apply must send again so that it changes only what the caller then changes."""
    meta = isvc.get("metadata") or {}
    owned: dict[str, Any] = {}
    for entry in meta.get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            owned = entry.get("fieldsV1") or {}
    extracted = _extract(isvc, owned)
    config: dict[str, Any] = {
        "apiVersion": isvc.get("apiVersion", "serving.kserve.io/v1beta1"),
        "kind": "InferenceService",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": extracted.get("spec") or {},
    }
    for key in ("labels", "annotations"):
        if (extracted.get("metadata") or {}).get(key):
            config["metadata"][key] = extracted["metadata"][key]
    return config


def _extract(value: Any, fields: dict[str, Any]) -> Any:
    """``value`` restricted to a FieldsV1 set (``f:`` map keys, ``k:``/``v:``/``i:`` list items)."""
    if not fields:
        return value
    if isinstance(value, dict):
        out = {}
        for key, sub in fields.items():
            if key.startswith("f:") and key[2:] in value:
                out[key[2:]] = _extract(value[key[2:]], sub)
        return out
    if isinstance(value, list):
        items = []
        for key, sub in fields.items():
            if key.startswith("k:"):
                wanted = json.loads(key[2:])
                for item in value:
                    if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
                        items.append({**wanted, **_extract(item, sub)})
            elif key.startswith("v:") and json.loads(key[2:]) in value:
                items.append(json.loads(key[2:]))
            elif key.startswith("i:") and int(key[2:]) < len(value):
                items.append(_extract(value[int(key[2:])], sub))
        return items
    return value


def _implementation_of(config: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The implementation mapping inside ``config``, created like the live one's if absent."""
    predictor = config["spec"].setdefault("predictor", {})
    return predictor.setdefault(implementation_field(live) or "model", {})


# --- promote and rollback ----------------------------------------------------------------


@dataclass
class Outcome:
    """What promote or rollback did."""

    action: str
    name: str
    namespace: str
    changed: bool
    message: str
    split: dict[str, Any] | None
    url: str = ""
    """The prediction URL (status.url and the protocol's path)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "name": self.name,
            "namespace": self.namespace,
            "changed": self.changed,
            "message": self.message,
            "split": self.split,
            "prediction_url": self.url,
        }


def _find(
    cluster: Cluster, namespace: str, name: str, workflow: str, force: bool
) -> dict[str, Any]:
    isvc = cluster.get("InferenceService", namespace, name)
    if isvc is None:
        raise UsageError(f"no InferenceService {namespace}/{name}; check the name and --namespace")
    if not force:
        refuse_unless_ours(
            [(f"InferenceService {namespace}/{name}", isvc)], workflow or None, CHANGE
        )
    if split(isvc) is None:
        raise UsageError(
            f"InferenceService {namespace}/{name} has no Knative revisions to split traffic "
            "between (Standard/RawDeployment mode, or not reconciled yet); canary rollouts need "
            "KServe's Knative mode"
        )
    return isvc


def _step(
    cluster: Cluster,
    live: dict[str, Any],
    config: dict[str, Any],
    timeout: float,
    force: bool,
    new_pods: bool = False,
) -> dict[str, Any]:
    """Apply ``config`` and wait until the rollout it makes serves (readiness.py): with
    ``new_pods`` (the model changed) a new revision with a new rollout id, else the traffic
    moved on the live one."""
    meta = live["metadata"]
    if new_pods:
        readiness.stamp(config, readiness.new_rollout_id())
    stored = cluster.apply(config, force=force)
    expect = readiness.expect_after(live, stored, new_pods)
    return cluster.wait_ready(meta["namespace"], meta["name"], expect, timeout)


def _drop_canary(
    cluster: Cluster, isvc: dict[str, Any], timeout: float, force: bool
) -> dict[str, Any]:
    """Remove canaryTrafficPercent (all traffic to the latest revision); waits for it."""
    config = applied_config(isvc)
    if force:  # take the field over from whoever set it, so this manager can remove it
        config["spec"].setdefault("predictor", {})[CANARY] = 100
        isvc = _step(cluster, isvc, config, timeout, force)
        config = applied_config(isvc)
    config["spec"].get("predictor", {}).pop(CANARY, None)
    return _step(cluster, isvc, config, timeout, force)


def promote(
    cluster: Cluster,
    namespace: str,
    name: str,
    workflow: str = "",
    force: bool = False,
    timeout: float = 600.0,
) -> Outcome:
    """Send all traffic to the canary and remove canaryTrafficPercent; waits until the status
    shows 100% on the latest revision."""
    isvc = _find(cluster, namespace, name, workflow, force)
    percent = canary_percent(isvc)
    if percent is None:
        if previous_model(isvc) and fully_on_latest(isvc):
            return Outcome(
                "promote", name, namespace, False,
                f"nothing to do: no canary; {describe_split(split(isvc))}", split(isvc),
            )  # fmt: skip
        raise UsageError(
            f"InferenceService {namespace}/{name} has no canary to promote; deploy a new model "
            "with --canary-traffic-percent first"
        )
    # The canary serves by the rule every wait uses (its own pods Ready, its share routed).
    verdict = readiness.judge(
        isvc, readiness.Expectation.of_live(isvc), cluster.pods(namespace, name)
    )
    if not verdict.ready:
        created = readiness.predictor_status(isvc).get("latestCreatedRevision")
        raise UsageError(
            f"the canary revision {created} of {namespace}/{name} is not serving "
            f"({verdict.failure or verdict.waiting}), so nothing was promoted; see "
            "`kserve-predictor status`, fix it or roll back"
        )
    isvc = _drop_canary(cluster, isvc, timeout, force)
    view = split(isvc)
    return Outcome(
        "promote", name, namespace, True, f"promoted: {describe_split(view)}", view,
        _prediction_url(isvc),
    )  # fmt: skip


def rollback(
    cluster: Cluster,
    namespace: str,
    name: str,
    workflow: str = "",
    force: bool = False,
    timeout: float = 600.0,
) -> Outcome:
    """Send all traffic back to the previous rolled-out revision, then restore the previous
    model in the spec (see the module docstring); waits for each step."""
    isvc = _find(cluster, namespace, name, workflow, force)
    previous = previous_model(isvc)
    current = storage_uri(isvc)
    if not previous:
        raise UsageError(
            f"InferenceService {namespace}/{name} has no previous model recorded (deploy "
            f"records one when it replaces a model, in the annotation {PREVIOUS}); nothing to "
            "roll back to"
        )
    if previous == current and canary_percent(isvc) is None and fully_on_latest(isvc):
        return Outcome(
            "rollback", name, namespace, False,
            f"nothing to do: already serving the previous model; {describe_split(split(isvc))}",
            split(isvc),
        )  # fmt: skip
    component = readiness.predictor_status(isvc)
    if previous != current and not (
        component.get("previousRolledoutRevision")
        or component.get("latestRolledoutRevision") not in (None, "", component.get("latestCreatedRevision"))
    ):  # fmt: skip
        raise UsageError(
            f"KServe reports no earlier rolled-out revision of {namespace}/{name} to send the "
            "traffic back to, so nothing was changed; deploy the previous model instead: "
            f"kserve-predictor deploy --model <its model URL> (its layout: {previous})"
        )
    # 1. The traffic back to the previous rolled-out revision: a route change, no new revision.
    if previous != current:
        config = applied_config(isvc)
        config["spec"].setdefault("predictor", {})[CANARY] = 0
        isvc = _step(cluster, isvc, config, timeout, force)
        log.info("traffic back on the previous revision: %s", describe_split(split(isvc)))
        # 2. The previous model in the spec; its new revision starts without traffic.
        config = applied_config(isvc)
        _implementation_of(config, isvc)["storageUri"] = previous  # PREVIOUS now names it too
        isvc = _step(cluster, isvc, config, timeout, force, new_pods=True)
    # 3. The percent removed: the ready revision with the previous model takes the traffic.
    isvc = _drop_canary(cluster, isvc, timeout, force)
    view = split(isvc)
    return Outcome(
        "rollback", name, namespace, True, f"rolled back to {previous}: {describe_split(view)}",
        view, _prediction_url(isvc),
    )  # fmt: skip


def _prediction_url(isvc: dict[str, Any]) -> str:
    from .deploy import prediction_url
    from .lifecycle import engine_of

    engine = engine_of(isvc)[0]
    url = str((isvc.get("status") or {}).get("url") or "")
    return prediction_url(url, engine, isvc["metadata"]["name"]) if url and engine else url
