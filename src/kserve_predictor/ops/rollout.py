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

from kserve_predictor.errors import UsageError
from kserve_predictor.kserve import readiness
from kserve_predictor.kserve.client import FIELD_MANAGER, Cluster
from kserve_predictor.kserve.isvc import (
    CANARY,
    PREVIOUS,
    canary_percent,
    describe_split,
    fully_on_latest,
    implementation_field,
    latest_created,
    predictor_status,
    previous_model,
    served_prediction_url,
    split,
    storage_uri,
)
from kserve_predictor.kserve.ownership import refuse_unless_ours
from kserve_predictor.settings.table import default

log = logging.getLogger("kserve_predictor.rollout")  # stable log channel, not the path

CHANGE = (
    "{what} belongs to {owner}, not to kserve-predictor, so nothing was changed; pass --force "
    "to change it anyway"
)


# --- reading the split -------------------------------------------------------------------


# --- what deploy records -----------------------------------------------------------------


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
    timeout: float = default("timeout"),
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
        created = latest_created(isvc)
        raise UsageError(
            f"the canary revision {created} of {namespace}/{name} is not serving "
            f"({verdict.failure or verdict.waiting}), so nothing was promoted; see "
            "`kserve-predictor status`, fix it or roll back"
        )
    isvc = _drop_canary(cluster, isvc, timeout, force)
    view = split(isvc)
    return Outcome(
        "promote", name, namespace, True, f"promoted: {describe_split(view)}", view,
        served_prediction_url(isvc),
    )  # fmt: skip


def rollback(
    cluster: Cluster,
    namespace: str,
    name: str,
    workflow: str = "",
    force: bool = False,
    timeout: float = default("timeout"),
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
    component = predictor_status(isvc)
    if previous != current and not (
        component.get("previousRolledoutRevision")
        or component.get("latestRolledoutRevision") not in (None, "", latest_created(isvc))
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
        view, served_prediction_url(isvc),
    )  # fmt: skip
