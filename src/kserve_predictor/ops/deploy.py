"""One deployment, in the order of DESIGN.md §1: read, choose, convert, apply, wait, register,
output. Everything that can be checked is checked before the first write, so bad input leaves
no InferenceService, no upload and no registration behind.

Two dry runs write nothing: ``server`` goes through every check against the cluster (the
Kubernetes API's own dry-run apply included); ``client`` renders the manifests from the model's
metadata alone, without a kubeconfig, the Kubernetes API or FuseML (``render``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from kserve_predictor.choice.detect import Detection, detect
from kserve_predictor.engines import Engine
from kserve_predictor.errors import (
    KubernetesRefused,
    UsageError,
)
from kserve_predictor.kserve import manifests, readiness
from kserve_predictor.kserve import release as kserve_release
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.connection import connect
from kserve_predictor.kserve.isvc import (
    describe_split,
    prediction_url,
    reachable_base,
    split,
)
from kserve_predictor.kserve.pod import in_pod
from kserve_predictor.layouts.convert import convert
from kserve_predictor.model.urls import resolve
from kserve_predictor.naming import check_app_name, check_host_names
from kserve_predictor.ops.deploy_checks import (
    check_compatibility,
    check_mode,
    check_namespace,
    check_ownership,
    check_recorded_mode,
    require_s3,
    spell_mode,
    with_protocol,
)
from kserve_predictor.ops.deploy_plan import (
    DeployResult,
    build_manifests,
    planned,
    record_previous_model,
    render,
    spec_style,
)
from kserve_predictor.progress import NO_PROGRESS, Progress
from kserve_predictor.settings.groups import DRY_RUN_CLIENT, DeploySettings

log = logging.getLogger("kserve_predictor.deploy")  # stable log channel, not the path


def deploy(
    settings: DeploySettings, cluster: Cluster | None = None, progress: Progress = NO_PROGRESS
) -> DeployResult:
    """Deploy the model to KServe; returns when it answers (or raises a typed error).

    ``progress`` is told of the conversion's copies (the CLI shows them on a terminal). With
    ``settings.dry_run`` it returns the plan instead, having written nothing (``client``: see
    ``render``).
    """
    # 1-2. What the model is and which engine serves it: metadata only.
    app = check_app_name(settings.app_name)
    location = resolve(settings.model_url, settings.s3)
    require_s3(settings.model_url, location.url)
    # The model itself is checked first (bad input before any system is asked); the engine is
    # chosen against the cluster's runtimes below.
    detect(location, settings.predictor, settings.runtime_version)
    limits = manifests.parse_limits(settings.resources_limits)
    if not settings.stable_name:
        log.warning(
            "no codeset and no app name: deploying as %s; every run creates a new service "
            "(set FUSEML_APP_NAME to update one service)",
            app,
        )
    if settings.dry_run_mode == DRY_RUN_CLIENT:
        return render(settings, location, limits)

    cluster = cluster or connect(settings.cluster)  # reads the kubeconfig only; no request yet
    if not settings.namespace:  # the kubeconfig context's namespace, as kubectl uses it
        settings = replace(settings, namespace=cluster.default_namespace)
    check_host_names(app, settings.namespace)

    # Preflight against the systems the step writes to, before writing anything.
    from kserve_predictor.fuseml.client import connect as fuseml_client

    fuseml = fuseml_client(settings.fuseml)
    registered: list[dict[str, Any]] = []  # the predictors FuseML lists, seen by the preflight
    if fuseml is not None:
        if not settings.workflow:
            raise UsageError(
                "registering with FuseML needs a workflow name; pass --workflow "
                "(FUSEML_ENV_WORKFLOW_NAME), or leave FUSEML_SERVER_URL unset to skip registration"
            )
        registered = fuseml.ping()
    check_namespace(cluster, settings.namespace)
    listed = cluster.list_runtimes(settings.namespace)
    detection, runtimes = check_compatibility(listed, settings, location)
    engine = with_protocol(detection.require_engine(), settings.options.protocol, runtimes)
    style = spec_style(settings.spec_style, cluster.serves_serving_runtimes)
    objects = build_manifests(settings, detection, location, engine, limits, style)
    existing = check_ownership(cluster, settings, objects)
    check_mode(settings, existing["InferenceService"])
    live = existing["InferenceService"]
    spell_mode(objects[-1], kserve_release.release_of(listed[0]), live)
    record_previous_model(objects[-1], live)
    # The live rollout id first: a re-run that changes nothing must compare equal.
    readiness.stamp(objects[-1], readiness.rollout_id(live or {}) or readiness.new_rollout_id())
    previews = []  # what each apply would store
    for manifest in objects:  # permissions, schema, webhooks, namespace, field conflicts
        try:
            previews.append(cluster.apply(manifest, dry_run=True, force=settings.force))
        except KubernetesRefused as e:
            if manifest["kind"] == "InferenceService" and settings.options.overlay:
                raise UsageError(
                    f"--overlay makes an InferenceService the cluster refuses: {e}"
                ) from e
            raise
    result = planned(settings, detection, engine, style, objects, settings.dry_run_mode)
    if result.dry_run:
        return result

    # 3. Convert next to the model (server-side copies, skipped when up to date).
    result.conversion = convert(location, detection.info, engine, app, progress)
    log.info("converted layout: %s", result.conversion.location)

    # 4. Create or update the objects.
    expect: readiness.Expectation | None = None
    for manifest, preview in zip(objects, previews, strict=True):
        name = manifest["metadata"]["name"]
        current = existing[manifest["kind"]]
        is_service = manifest["kind"] == "InferenceService"
        if current is not None and not settings.force and _unchanged(current, preview):
            if is_service:  # nothing rolls out: the live rollout must serve
                expect = readiness.Expectation.of_live(current)
            continue
        new_pods = is_service and readiness.template_view(current) != readiness.template_view(
            preview
        )
        if new_pods and readiness.rollout_id(current or {}):
            readiness.stamp(manifest, readiness.new_rollout_id())  # new pods, a new id
        stored = cluster.apply(manifest, force=settings.force)
        if is_service:
            expect = readiness.expect_after(current, stored, new_pods)
        if _version(current) != _version(stored):
            result.changed.append(f"{manifest['kind']}/{name}")
    assert expect is not None
    log.info(
        "applied %s; waiting for rollout %s to serve",
        ", ".join(result.changed) or "no change",
        expect.rollout_id,
    )

    # 5. Wait until the new model serves: the rollout's own pods, not a stale status.
    isvc = cluster.wait_ready(settings.namespace, app, expect, settings.timeout)
    check_recorded_mode(isvc, settings)
    result.split = split(isvc)
    if settings.options.canary_traffic_percent is not None:
        log.info("traffic: %s", describe_split(result.split))
    result.url = str((isvc.get("status") or {}).get("url") or "")
    if not result.url:
        raise UsageError(
            f"InferenceService {settings.namespace}/{app} is ready but has no status.url; "
            "configure KServe's ingress domain"
        )
    result.prediction_url = prediction_url(result.url, engine, app)
    if settings.smoke_test and engine.protocol == "grpc-v2":
        log.info("smoke test skipped: it speaks HTTP and the service speaks gRPC")
    elif settings.smoke_test:
        result.smoke_ms = _smoke_test(isvc, detection, engine, app)

    # 6. Register with FuseML; the service works even if this fails, so say where it is.
    if fuseml is not None:
        from kserve_predictor.fuseml.client import Application

        application = Application(
            name=app,
            type="predictor",
            description=f"{engine.name} predictor for {detection.info.url}",
            url=result.prediction_url,
            workflow=settings.workflow,
            k8s_namespace=settings.namespace,
            k8s_resources=manifests.k8s_resources(app),
        )
        fuseml.register_serving(application, "service", registered)
        result.registered = True
    return result


def _smoke_test(
    isvc: dict[str, Any], detection: Detection, engine: Engine, app: str
) -> float | None:
    """Send the input example: in a pod through the cluster-local address, elsewhere through
    status.url. A Ready service that cannot be reached from here is a warning, not a failure."""
    import json

    from kserve_predictor.modelserver.smoke import (
        MAX_EXAMPLE_BYTES,
        Unreachable,
        build_request,
        example_rows,
        ingress_command,
        send,
    )

    rows = example_rows(detection.location, detection.info)
    if rows is None:
        log.info("the model has no usable input example: no smoke test")
        return None
    body = build_request(rows, engine.protocol, detection.info)
    size = len(json.dumps(body))
    if size > MAX_EXAMPLE_BYTES:
        log.warning(
            "smoke test skipped: the input example makes a %d-byte request, more than %d",
            size, MAX_EXAMPLE_BYTES,
        )  # fmt: skip
        return None
    url = prediction_url(reachable_base(isvc, in_pod()), engine, app)
    result = send(url, body, len(rows), engine.protocol)
    if isinstance(result, Unreachable):
        external, path = reachable_base(isvc), engine.prediction_path(app)
        log.warning(
            "smoke test skipped: %s cannot be reached from here (%s); the service is Ready. "
            "To try it through the ingress: %s",
            result.url, result.reason, ingress_command(external, path, body),
        )  # fmt: skip
        return None
    log.info("smoke test: %d rows answered in %.1f ms", result.rows, result.latency_ms)
    return result.latency_ms


def _unchanged(current: dict[str, Any], preview: dict[str, Any]) -> bool:
    """Would the apply whose dry run answered ``preview`` leave ``current`` as it is? Compared
    whole, but for what a dry run stamps anew (resourceVersion, the managers' times): spec,
    metadata, status and who owns which field."""
    return _comparable(current) == _comparable(preview)


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    meta["managedFields"] = [
        {k: v for k, v in entry.items() if k != "time"} for entry in meta.get("managedFields") or []
    ]
    return {**obj, "metadata": meta}


def _version(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else str(obj.get("metadata", {}).get("resourceVersion"))
