"""The checks a deploy makes before its first write (so bad input leaves nothing behind): the
model URL, the engine against the cluster's runtimes and the compatibility verdict, the
protocol, the deployment mode and its spelling for the cluster's release, the namespace, and
who owns the objects of the same name."""

from __future__ import annotations

import logging
from typing import Any

from kserve_predictor.choice.detect import Detection, detect
from kserve_predictor.engines import Engine
from kserve_predictor.errors import (
    PredictorMismatchError,
    UsageError,
)
from kserve_predictor.kserve import release as kserve_release
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.ownership import ADOPT, refuse_unless_ours
from kserve_predictor.model.urls import ModelLocation
from kserve_predictor.settings.groups import DeploySettings

log = logging.getLogger("kserve_predictor.deploy")  # stable log channel, not the path


def require_s3(model_url: str, resolved: str, run_local: bool = False) -> None:
    """KServe's storage initializer downloads the model in the cluster, from S3: a local
    folder (or any other location) cannot be served there."""
    if resolved.startswith("s3://"):
        return
    instead = "`mlflow deployments run-local -t kserve`" if run_local else "--target local"
    raise UsageError(
        f"model URL {model_url!r} is not in S3, which KServe's storage initializer needs to "
        "download the model in the cluster; log the model to an S3/MinIO artifact store, or "
        f"serve it on this machine with {instead}"
    )


def check_compatibility(
    listed: tuple[list[dict[str, Any]], list[str]],
    settings: DeploySettings,
    location: ModelLocation,
) -> tuple[Detection, list[Any] | None]:
    """Choose the engine against the runtimes this cluster has (``listed``: Cluster.list_runtimes;
    KServe's release defaults when they cannot be listed); stop on ``incompatible`` unless
    allowed. Writes nothing. Returns the runtimes looked at too (None: the cluster has no
    ServingRuntime API)."""
    from kserve_predictor.choice.runtime_selection import ServingRuntime, default_runtimes

    objects, unreadable = listed
    runtimes = [ServingRuntime.from_object(o) for o in objects]
    source = "cluster"
    if "ClusterServingRuntime:404" in unreadable:
        source = "unknown"  # no ServingRuntime API: an old KServe, runtimes set in its configmap
    elif "ClusterServingRuntime:403" in unreadable:
        log.warning(
            "cannot list ClusterServingRuntimes (grant list as in deploy/rbac.yaml): assuming "
            "KServe's default runtimes"
        )
        runtimes += list(default_runtimes())
        source = "cluster+defaults" if objects else "defaults"
    return choose_engine(settings, location, runtimes, source)


def choose_engine(
    settings: DeploySettings, location: ModelLocation, runtimes: list[Any], source: str
) -> tuple[Detection, list[Any] | None]:
    """The engine for the model among ``runtimes`` and its compatibility verdict; stop on
    ``incompatible`` unless allowed. ``source`` "unknown": the cluster's runtimes are not
    known (returned as None)."""
    from kserve_predictor.choice.verdict import INCOMPATIBLE, WARNING
    from kserve_predictor.settings.serving import asks_probabilities

    detection = detect(
        location,
        settings.predictor,
        settings.runtime_version,
        runtimes,
        source,
        settings.runtime_libraries,
        asks_probabilities(settings.options),
    )
    known = None if source == "unknown" else runtimes
    verdict = detection.compatibility
    if detection.choice:
        log.info("%s", detection.choice)
    if verdict is None or verdict.status in ("ok", "adjusted"):
        if verdict and verdict.status == "adjusted":
            log.info("compatibility: %s", verdict.summary())
        return detection, known
    if verdict.status == WARNING:
        log.warning("compatibility warning on %s: %s", verdict.image, "; ".join(verdict.problems))
        return detection, known
    assert verdict.status == INCOMPATIBLE
    problems = "; ".join(verdict.problems)
    message = (
        f"{verdict.runtime} ({verdict.image}) cannot serve {location.url} correctly: {problems}"
        if verdict.runtime
        else problems
    )
    if not settings.allow_incompatible:
        raise PredictorMismatchError(
            message + " (--allow-incompatible / FUSEML_ALLOW_INCOMPATIBLE=true deploys anyway)"
        )
    log.warning("deploying anyway (--allow-incompatible): %s", message)
    return detection, known


def with_protocol(engine: Engine, protocol: str | None, runtimes: list[Any] | None) -> Engine:
    """The engine speaking the protocol asked for, when a runtime for its format speaks it
    (KServe's "No runtime found" otherwise, after the write)."""
    import copy

    from kserve_predictor.choice.runtime_selection import default_runtimes, supporting_runtimes

    if protocol is None or protocol == engine.protocol:
        return engine
    known = list(default_runtimes()) if runtimes is None else runtimes
    found = supporting_runtimes(known, engine.model_format, protocol, None, engine.explicit_runtime)
    if not found:
        speaks = sorted(
            {
                p
                for r in supporting_runtimes(known, engine.model_format, engine.protocol)
                for p in r.spec.get("protocolVersions") or ["v1"]
            }
        )
        raise UsageError(
            f"protocol {protocol} (--protocol, FUSEML_PROTOCOL): no runtime serving {engine.name} models speaks it "
            f"(they speak {', '.join(speaks) or engine.protocol}); use one of those, or a "
            "predictor whose runtime does (grpc-v2: --predictor triton)"
        )
    changed = copy.copy(engine)
    changed.protocol = protocol  # an instance attribute over the engine's default
    return changed


def check_mode(settings: DeploySettings, existing: dict[str, Any] | None) -> None:
    """KServe records the mode in status.deploymentMode (>= 0.15) and never moves a service to
    another mode (its webhook rejects the change): refuse it here, before any write. The mode
    rules (canary, scale to zero) apply to the mode the service will have; with no mode asked
    and no service yet, that is the cluster's default, which this identity cannot read."""
    from kserve_predictor.settings.serving import check_mode, normal_mode, recorded_mode

    asked = settings.options.deployment_mode
    recorded = normal_mode(recorded_mode(existing))
    name = f"{settings.namespace}/{settings.app_name}"
    if asked and recorded and asked != recorded:
        raise UsageError(
            f"deployment mode {asked} (--deployment-mode, FUSEML_DEPLOYMENT_MODE): "
            f"InferenceService {name} runs in {recorded} mode and "
            "KServe does not move a service between modes; delete it first "
            "(kserve-predictor delete) or deploy under a new --app-name"
        )
    check_mode(settings.options, recorded)
    mode = asked or recorded
    options = settings.options
    if mode is None and (options.canary_traffic_percent is not None or options.min_replicas == 0):
        log.warning(
            "canary traffic and scale to zero need Knative mode; the cluster's default mode "
            "decides (set --deployment-mode Knative to be sure)"
        )


def spell_mode(
    isvc: dict[str, Any], release: tuple[int, int] | None, live: dict[str, Any] | None
) -> None:
    """The deployment mode annotation under the name this cluster's KServe reads (v0.14 and
    v0.15 ignore ``Standard``, see kserve_release.py)."""
    from kserve_predictor.settings.serving import MODE_ANNOTATION

    annotations = isvc["metadata"].get("annotations") or {}
    mode = annotations.get(MODE_ANNOTATION)
    if mode not in ("Standard", "Knative"):
        return  # none asked, or an --overlay's own spelling
    annotations[MODE_ANNOTATION] = kserve_release.mode_spelling(mode, release, live)
    if release is None and live is None:
        log.info(
            "KServe's release is unknown here (no stock ClusterServingRuntime image tag): "
            "writing deployment mode %s, which KServe v0.16 and later read",
            mode,
        )


def check_recorded_mode(isvc: dict[str, Any], settings: DeploySettings) -> None:
    """The mode KServe records (v0.15.1 and later) is the one asked for: a release that did not
    read the annotation's name runs the service in its default mode instead."""
    from kserve_predictor.settings.serving import normal_mode

    asked = settings.options.deployment_mode
    recorded = (isvc.get("status") or {}).get("deploymentMode")
    if asked and recorded and normal_mode(recorded) != asked:
        raise UsageError(
            f"InferenceService {settings.namespace}/{settings.app_name} runs in "
            f"{normal_mode(recorded)} mode, not the {asked} mode asked: this KServe did not read "
            "the deployment mode annotation (v0.14 and v0.15 read only RawDeployment and "
            "Serverless); delete it and deploy with --overlay setting that annotation"
        )


def check_namespace(cluster: Cluster, namespace: str) -> None:
    if cluster.namespace_exists(namespace) is False:
        raise UsageError(f"namespace {namespace!r} does not exist; create it or choose another")


def check_ownership(
    cluster: Cluster, settings: DeploySettings, objects: list[dict[str, Any]]
) -> dict[str, dict[str, Any] | None]:
    """Refuse to take over any object someone else made (or another workflow), unless --force;
    returns the existing objects by kind (None where absent)."""
    existing = {
        m["kind"]: cluster.get(m["kind"], settings.namespace, m["metadata"]["name"])
        for m in objects
    }
    if not settings.force:
        refuse_unless_ours(
            [
                (f"{m['kind']} {settings.namespace}/{m['metadata']['name']}", existing[m["kind"]])
                for m in reversed(objects)  # the InferenceService first: the one users name
            ],
            settings.workflow,
            ADOPT,
        )
    return existing
