"""One decision for one entry, derived from the cluster and the registry alone, never from
memory: a sync restarted mid-rollout reads the same state and resumes (``deploy`` is
idempotent: applied already, it writes nothing and waits for that rollout to serve).

- served version: the version whose artifacts the InferenceService's storageUri lies under
  (deploy converts into ``<model source>/kserve/<engine>-<digest>/``);
- wanted version: the alias, resolved through the MLflow client;
- a version that failed for this app carries the model-version tag ``FAILED`` in the registry,
  so it is not retried on every poll; moving the alias (or deleting the tag) retries.

Every rollout is ``deploy.deploy`` (compatibility check, ownership, the wait, the smoke test);
promote and rollback are ``rollout.promote``/``rollout.rollback``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from kserve_predictor.errors import (
    KservePredictorError,
    ModelFormatError,
    ModelUrlError,
    NotReady,
    PredictorMismatchError,
    ReadyTimeout,
    RegistryError,
    SmokeTestFailed,
)
from kserve_predictor.kserve import readiness
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.isvc import canary_percent, previous_model, storage_uri
from kserve_predictor.ops import rollout
from kserve_predictor.ops.deploy import deploy
from kserve_predictor.settings.groups import DeploySettings
from kserve_predictor.sync.config import Entry

log = logging.getLogger("kserve_predictor.sync")

FAILED = "kserve-predictor/failed/{namespace}/{app}"
"""Model-version tag naming why that version could not be rolled out to that app."""
VERSION_FAULTS = (NotReady, ReadyTimeout, SmokeTestFailed, ModelFormatError, ModelUrlError,
                  PredictorMismatchError)  # fmt: skip
"""Failures of the version itself: tagged, rolled back. Anything else (the cluster or the
registry unreachable, someone else's service, a field conflict) is not the version's fault: it
is logged, nothing is tagged, and the next poll tries again."""


@dataclass
class State:
    """The ``status`` view of one entry."""

    app: str
    namespace: str
    model: str
    alias: str
    wanted: str = ""
    served: str = ""
    state: str = "unknown"
    """in-sync, rolling-out, canary, failed (the wanted version is tagged FAILED), rolled-back,
    error (not the version's fault; retried at the next poll)."""
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Registry:
    """The MLflow registry, through its client (MLFLOW_TRACKING_URI)."""

    def __init__(self) -> None:
        import mlflow

        self.client = mlflow.MlflowClient()

    def wanted(self, entry: Entry) -> tuple[str, str]:
        """The alias's version and that version's artifact location."""
        try:
            version = self.client.get_model_version_by_alias(entry.model, entry.alias)
            source = self.client.get_model_version_download_uri(entry.model, version.version)
        except Exception as e:
            raise RegistryError(f"cannot resolve models:/{entry.model}@{entry.alias}: {e}") from e
        return str(version.version), str(source)

    def served(self, entry: Entry, uri: str) -> str:
        """The version whose artifacts ``uri`` lies under ('' when none)."""
        if not uri:
            return ""
        for version in self.client.search_model_versions(f"name='{entry.model}'"):
            source = self.client.get_model_version_download_uri(entry.model, version.version)
            if _under(uri, str(source)):
                return str(version.version)
        return ""

    def failure(self, entry: Entry, version: str) -> str:
        tags = self.client.get_model_version(entry.model, version).tags or {}
        return str(tags.get(FAILED.format(namespace=entry.namespace, app=entry.app)) or "")

    def mark_failed(self, entry: Entry, version: str, reason: str) -> None:
        key = FAILED.format(namespace=entry.namespace, app=entry.app)
        self.client.set_model_version_tag(entry.model, version, key, reason[:4000])


def _under(uri: str, source: str) -> bool:
    source = source.rstrip("/")
    return uri.rstrip("/") == source or uri.startswith(source + "/")


@dataclass(frozen=True)
class Target:
    """How every rollout reaches the cluster (what ``deploy`` needs besides the entry)."""

    base: DeploySettings
    """kubeconfig, context, S3, retry and TLS settings; model and app are set per entry."""


def decide(entry: Entry, registry: Registry, cluster: Cluster, target: Target) -> State:
    """Compare, and roll out when the alias names another version than the one served."""
    state = State(entry.app, entry.namespace, entry.model, entry.alias)
    version, source = registry.wanted(entry)
    state.wanted = version
    isvc = cluster.get("InferenceService", entry.namespace, entry.app)
    uri = storage_uri(isvc) if isvc else ""
    state.served = registry.served(entry, uri)
    failure = registry.failure(entry, version)
    if failure:
        state.state, state.message = "failed", f"version {version} failed before: {failure}"
        return state
    if isvc is not None and _under(uri, source):
        canary = canary_percent(isvc)
        verdict = readiness.judge(
            isvc, readiness.Expectation.of_live(isvc), cluster.pods(entry.namespace, entry.app)
        )
        if verdict.ready and canary is None:
            state.state = "in-sync"
            return state
        # A rollout of this version was applied and not finished (a restart): deploy again,
        # which writes nothing new and waits for it, then the policy's last step.
        state.state = "canary" if canary is not None else "rolling-out"
    else:
        state.state = "rolling-out"
    return state


def roll_out(
    entry: Entry, state: State, registry: Registry, cluster: Cluster, target: Target
) -> str:
    """The rollout ``decide`` asked for; returns its outcome (succeeded, promoted, failed,
    rolled_back, error). A failure of the version is recorded on it (``FAILED``); none is raised."""
    settings = replace(
        target.base,
        model_url=f"models:/{entry.model}/{state.wanted}",
        app_name=entry.app,
        namespace=entry.namespace,
        predictor=entry.predictor,
        timeout=entry.timeout,
        options=entry.options,
    )
    before = cluster.get("InferenceService", entry.namespace, entry.app)
    try:
        deploy(settings, cluster)
        if entry.policy == "canary" and before is not None:
            time.sleep(entry.promote_after)  # Ready (and smoke-tested) at least this long
            rollout.promote(cluster, entry.namespace, entry.app, timeout=entry.timeout)
            return "promoted"
        return "succeeded"
    except KservePredictorError as e:
        reason = str(e).splitlines()[0]
        if not isinstance(e, VERSION_FAULTS):
            state.message = reason
            return "error"
        registry.mark_failed(entry, state.wanted, reason)
        record("failed", entry, state, reason=reason)
        live = cluster.get("InferenceService", entry.namespace, entry.app) or {}
        if entry.rollback and previous_model(live) and readiness.is_knative(live):
            try:
                rollout.rollback(cluster, entry.namespace, entry.app, timeout=entry.timeout)
            except KservePredictorError as again:
                record("rollback-failed", entry, state, reason=str(again).splitlines()[0])
                return "failed"
            return "rolled_back"
        return "failed"


def record(decision: str, entry: Entry, state: State, **extra: Any) -> None:
    """One structured log line per decision."""
    line = {"decision": decision, "app": entry.key, "model": entry.model, "alias": entry.alias,
            "wanted": state.wanted, "served": state.served, **extra}  # fmt: skip
    log.info(json.dumps(line, sort_keys=True))
