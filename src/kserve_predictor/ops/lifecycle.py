"""Looking at and removing what `deploy` made, on either target: the status and delete commands.

A name is looked up where ``--target`` says: ``local`` (the registry of background servers),
``kserve`` (the cluster), or ``auto``: both, and a name found in both places is an error that
asks which. Delete removes only what this product manages (its managed-by label; the FuseML
record only if it is the one registered for that deployment), checks everything before it
deletes anything, and is idempotent: what is already gone is fine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kserve_predictor.errors import KservePredictorError, NoKubernetesConfig, UsageError
from kserve_predictor.kserve.client import ISVC_LABEL, Cluster
from kserve_predictor.kserve.connection import connect
from kserve_predictor.kserve.isvc import engine_of, served_prediction_url, split
from kserve_predictor.kserve.manifests import credentials_name
from kserve_predictor.kserve.ownership import (
    REMOVE,
    WORKFLOW_LABEL,
    fuseml_owner_problem,
    is_managed,
    refuse_unless_ours,
)
from kserve_predictor.kserve.readiness import READING_PODS, Expectation, describe_status, judge
from kserve_predictor.settings.groups import ClusterSettings, FuseMLSettings, S3Settings
from kserve_predictor.settings.serving import normal_mode, recorded_mode

log = logging.getLogger("kserve_predictor.lifecycle")  # stable log channel, not the path

AUTO, KSERVE, LOCAL = "auto", "kserve", "local"
TARGETS = (AUTO, KSERVE, LOCAL)


@dataclass(frozen=True)
class Found:
    """Where a name lives: ``target`` is kserve, local, or "" when it is nowhere to be seen."""

    target: str
    local: Any = None
    """The LocalApp, for the local target."""
    isvc: dict[str, Any] | None = None
    cluster: Cluster | None = None
    namespace: str = ""
    """The namespace looked in: the one asked for, else the kubeconfig context's."""
    no_cluster: str = ""
    """Why no cluster was looked at when nothing configures one (auto); "" when one was."""


def find(name: str, target: str, namespace: str | None, settings: ClusterSettings) -> Found:
    """Look ``name`` up on the target(s) asked for.

    With ``auto``, a local deployment of that name settles it without the cluster when the
    cluster cannot be read; otherwise a cluster that cannot be read (its configuration
    broken, its API unreachable) is an error, never "not found". Only when nothing
    configures a cluster at all (no pod, no kubeconfig) is the local registry all there is.
    An unknown --context is an error on every target.
    """
    from kserve_predictor.local.target import load_app

    if target not in TARGETS:
        raise UsageError(f"target {target!r} is unknown; use auto, kserve or local")
    local = load_app(name) if target in (AUTO, LOCAL) else None
    if target == LOCAL:
        return Found(LOCAL if local is not None else "", local=local)
    try:
        cluster = connect(settings)
        namespace = namespace or cluster.default_namespace
        isvc = cluster.get("InferenceService", namespace, name)
    except NoKubernetesConfig as e:
        if target == KSERVE:
            raise
        log.debug("no Kubernetes configuration: looking at local deployments only")
        return Found(LOCAL if local is not None else "", local=local, no_cluster=str(e))
    except KservePredictorError as e:
        if target == KSERVE or local is None or settings.context:
            raise
        # The local deployment is what the name means here; the cluster could not say
        # otherwise (a name in both places would be an error).
        log.warning("%s is a local deployment; the cluster was not checked: %s", name, e)
        return Found(LOCAL, local=local)
    if local is not None and isvc is not None:
        raise UsageError(
            f"{name} is both a local deployment and InferenceService {namespace}/{name}; "
            "pass --target local or --target kserve"
        )
    if local is not None:
        return Found(LOCAL, local=local)
    return Found(KSERVE, isvc=isvc, cluster=cluster, namespace=namespace)


def service_status(
    isvc: dict[str, Any],
    namespace: str,
    name: str,
    fuseml: FuseMLSettings | None,
    pods: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """What an InferenceService says about itself: readiness (the rule deploy waits on, see
    readiness.py, so a stale status is not called ready), engine, URLs, FuseML record."""
    engine, protocol, storage = engine_of(isvc)
    status = isvc.get("status") or {}
    if pods is not None:  # the service's own (a namespace's list holds every service's)
        pods = [p for p in pods if _labels(p).get(ISVC_LABEL) == name]
    verdict = judge(isvc, Expectation.of_live(isvc), pods)
    ready = verdict.ready
    url = str(status.get("url") or "")
    client = _fuseml(fuseml)
    app = client.get(name) if client is not None else None
    registered = app.get("url") if app else None
    return {
        "name": name,
        "namespace": namespace,
        "ready": ready,
        "problem": None if ready else (verdict.failure or _problem(isvc, verdict.waiting)),
        "engine": engine.name if engine else None,
        "protocol": protocol,
        "storage_uri": storage,
        "url": url,
        "prediction_url": served_prediction_url(isvc),
        "deployment_mode": normal_mode(recorded_mode(isvc)),
        "fuseml": registered,
        "split": split(isvc),
    }


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _problem(isvc: dict[str, Any], waiting: str) -> str:
    described = describe_status(isvc)
    if waiting == READING_PODS:
        waiting = "the predictor pods could not be read (grant list on pods)"
    return waiting if described == "no condition reported yet" else f"{waiting}; {described}"


def status(
    name: str,
    target: str,
    namespace: str | None,
    settings: ClusterSettings,
    fuseml: FuseMLSettings | None,
) -> dict[str, Any]:
    """The deployment called ``name``: ``target`` (local or kserve), ``ready`` and its URLs."""
    from kserve_predictor.local.target import describe

    found = find(name, target, namespace, settings)
    if found.target == LOCAL:
        info = describe(found.local)
        return {**info, "target": LOCAL, "ready": info["running"]}
    namespace = found.namespace or namespace or "default"
    if found.no_cluster:
        raise UsageError(
            f"no local deployment named {name}, and no cluster to look for an InferenceService "
            f"in: {found.no_cluster}"
        )
    if found.isvc is None:
        where = [f"InferenceService {namespace}/{name}"] if target != LOCAL else []
        where += [f"local deployment named {name}"] if target != KSERVE else []
        raise UsageError(
            f"no {' and no '.join(where)}; check the name and --namespace "
            "(`kserve-predictor status` lists the local ones)"
        )
    pods = found.cluster.pods(namespace, name) if found.cluster is not None else None
    info = service_status(found.isvc, namespace, name, fuseml, pods)
    return {**info, "target": KSERVE}


def delete(
    name: str,
    target: str,
    namespace: str | None,
    settings: ClusterSettings,
    fuseml: FuseMLSettings | None,
    workflow: str = "",
    force: bool = False,
    collect_layout: S3Settings | None = None,
) -> list[str]:
    """Delete the deployment ``name`` and its FuseML record; returns what was removed.

    Refuses (UsageError, nothing deleted) an object this product did not make, one of another
    workflow when ``workflow`` is given, or a FuseML record registered for something else,
    unless ``force``. With ``collect_layout`` (the artifact store's settings), the service's
    converted layout is removed too when no other InferenceService uses it.
    """
    from kserve_predictor.local.target import stop

    found = find(name, target, namespace, settings)
    if found.no_cluster and not found.target:
        log.info("only local deployments were looked at: %s", found.no_cluster)
    if collect_layout is not None and found.target == LOCAL:
        raise UsageError("--gc collects KServe layouts; a local deployment has none to collect")
    client = _fuseml(fuseml)
    record = client.get(name) if client is not None and found.target else None
    removed: list[str] = []
    if found.target == LOCAL:
        _check_record(record, name, workflow or "local", None, force)
        stop(found.local)
        removed.append(f"local server {name} (pid {found.local.pid})")
    elif found.target == KSERVE and found.cluster is not None:
        cluster, namespace = found.cluster, found.namespace
        objects = [
            ("InferenceService", name, found.isvc),
            *(
                (kind, credentials_name(name), cluster.get(kind, namespace, credentials_name(name)))
                for kind in ("ServiceAccount", "Secret")
            ),
        ]
        if not force:
            present = [(f"{kind} {namespace}/{n}", obj) for kind, n, obj in objects]
            refuse_unless_ours(present, workflow or None, REMOVE)
        isvc = found.isvc
        registered_by = (
            ((isvc.get("metadata") or {}).get("labels") or {}).get(WORKFLOW_LABEL, "")
            if isvc is not None and is_managed(isvc)
            else workflow
        )
        _check_record(record, name, registered_by, namespace, force)
        for kind, object_name, obj in objects:
            if obj is not None and cluster.delete(kind, namespace, object_name):
                removed.append(f"{kind} {namespace}/{object_name}")
        if collect_layout is not None and isvc is not None:
            removed += _collect_layout(cluster, isvc, collect_layout)
    if record is not None and client is not None and client.delete(name):
        removed.append(f"FuseML application {name}")
    return removed


def _collect_layout(cluster: Cluster, isvc: dict[str, Any], s3: S3Settings) -> list[str]:
    """The deleted service's layout, removed when nothing else references it."""
    from kserve_predictor.layouts.gc import collect_after_delete

    collected = collect_after_delete(cluster, isvc, s3)
    if collected is None:
        return []
    for use in collected.layouts:
        if not use.remove:
            log.info("kept the layout %s: %s", use.url, use.reason)
    return list(collected.removed)


def _fuseml(settings: FuseMLSettings | None) -> Any:
    """The FuseML client, built as deploy builds it (fuseml.client.connect)."""
    from kserve_predictor.fuseml.client import connect as fuseml_client

    return fuseml_client(settings)


def _check_record(
    record: dict[str, Any] | None, name: str, workflow: str, namespace: str | None, force: bool
) -> None:
    problem = fuseml_owner_problem(record, workflow, namespace) if record is not None else None
    if problem and not force:
        raise UsageError(
            f"FuseML application {name} is not the one registered for this deployment ({problem}), "
            "so nothing was deleted; pass --force to delete it anyway"
        )
