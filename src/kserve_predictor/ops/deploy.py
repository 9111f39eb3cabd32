"""One deployment, in the order of DESIGN.md §1: read, choose, convert, apply, wait, register,
output. Everything that can be checked is checked before the first write, so bad input leaves
no InferenceService, no upload and no registration behind.

Two dry runs write nothing: ``server`` goes through every check against the cluster (the
Kubernetes API's own dry-run apply included); ``client`` renders the manifests from the model's
metadata alone, without a kubeconfig, the Kubernetes API or FuseML (``render``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kserve_predictor.choice.detect import Detection, detect
from kserve_predictor.engines import Engine
from kserve_predictor.errors import (
    FuseMLError,
    KubernetesRefused,
    PredictorMismatchError,
    UsageError,
)
from kserve_predictor.kserve import manifests, readiness
from kserve_predictor.kserve import release as kserve_release
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.connection import connect
from kserve_predictor.kserve.isvc import (
    PREVIOUS,
    describe_split,
    model_to_record,
    prediction_url,
    reachable_base,
    split,
    storage_uri,
)
from kserve_predictor.kserve.ownership import ADOPT, refuse_unless_ours
from kserve_predictor.kserve.pod import in_pod
from kserve_predictor.layouts.convert import ConversionResult, convert
from kserve_predictor.model.urls import ModelLocation, resolve
from kserve_predictor.naming import check_app_name, check_host_names
from kserve_predictor.progress import NO_PROGRESS, Progress
from kserve_predictor.redact import masked_repr
from kserve_predictor.settings.groups import DRY_RUN_CLIENT, DeploySettings

log = logging.getLogger("kserve_predictor.deploy")  # stable log channel, not the path


@dataclass
class DeployResult:
    """What a deployment did and where it answers."""

    app_name: str
    namespace: str
    engine: str
    protocol: str
    storage_uri: str
    spec_style: str
    manifests: list[dict[str, Any]]
    prediction_url: str = ""
    url: str = ""
    """The InferenceService's status.url."""
    conversion: ConversionResult | None = None
    registered: bool = False
    dry_run: str = ""
    """"" for a deployment; the dry run's mode: "server" or "client"."""
    not_checked: list[str] = field(default_factory=list)
    """What a client dry run leaves unchecked (NOT_CHECKED)."""
    changed: list[str] = field(default_factory=list)
    """Objects whose stored state this run changed."""
    smoke_ms: float | None = None
    """Latency of the smoke test's prediction, when one ran."""
    compatibility: dict[str, Any] | None = None
    """The compatibility verdict on the runtime KServe selects."""
    split: dict[str, Any] | None = None
    """The traffic split the status reports (Knative mode), see split."""

    def __repr__(self) -> str:
        return masked_repr(self)  # the manifests hold the Secret

    def as_dict(self) -> dict[str, Any]:
        conversion = self.conversion
        return {
            "app_name": self.app_name,
            "namespace": self.namespace,
            "engine": self.engine,
            "protocol": self.protocol,
            "storage_uri": self.storage_uri,
            "spec_style": self.spec_style,
            "prediction_url": self.prediction_url,
            "url": self.url,
            "registered": self.registered,
            "dry_run": bool(self.dry_run),
            "dry_run_mode": self.dry_run or None,
            "not_checked": self.not_checked,
            "changed": self.changed,
            "copied": conversion.copied if conversion else [],
            "skipped": conversion.skipped if conversion else [],
            "smoke_test_ms": None if self.smoke_ms is None else round(self.smoke_ms, 1),
            "compatibility": self.compatibility,
            "split": self.split,
        }


GRPC_METHOD = "inference.GRPCInferenceService/ModelInfer"


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


NOT_CHECKED = (
    "spec style (predictor.model written; --spec-style legacy for a KServe without the "
    "ServingRuntime API)",
    "runtime selection against the cluster's runtimes (assumed: KServe v0.20.0's defaults"
    ", and kserve-predictor-mlflow for --predictor pyfunc)",
    "namespace existence",
    "permissions",
    "CRD schema and admission webhooks",
    "objects of the same name (ownership, field managers, the deployment mode they run in)",
    "the deployment mode's spelling for the cluster's KServe release (v0.16+ names written)",
    "FuseML reachability",
)
"""What ``--dry-run=client`` cannot know without the cluster, said with its plan."""


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
    _check_namespace(cluster, settings.namespace)
    listed = cluster.list_runtimes(settings.namespace)
    detection, runtimes = _check_compatibility(listed, settings, location)
    engine = _with_protocol(detection.require_engine(), settings.options.protocol, runtimes)
    style = _spec_style(settings.spec_style, cluster.serves_serving_runtimes)
    objects = _manifests(settings, detection, location, engine, limits, style)
    existing = _check_ownership(cluster, settings, objects)
    _check_mode(settings, existing["InferenceService"])
    live = existing["InferenceService"]
    _spell_mode(objects[-1], kserve_release.release_of(listed[0]), live)
    _record_previous_model(objects[-1], live)
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
    result = _planned(settings, detection, engine, style, objects, settings.dry_run_mode)
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
    _check_recorded_mode(isvc, settings)
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
        if application.registered_in(registered):
            log.info("FuseML application %s is registered as it is", app)
            result.registered = True
            return result
        try:
            fuseml.register(application)
        except FuseMLError as e:
            raise FuseMLError(f"{e} (the service itself is up at {result.prediction_url})") from e
        result.registered = True
    return result


def render(
    settings: DeploySettings, location: ModelLocation, limits: dict[str, str]
) -> DeployResult:
    """``--dry-run=client``: the Secret, ServiceAccount and InferenceService from the model's
    metadata alone. S3 is read (MLmodel, the environment files, the listing that names the
    layout's folder), nothing is written anywhere, and no kubeconfig is read: what only the
    cluster knows is assumed and listed in ``not_checked`` (NOT_CHECKED). The output is
    reproducible: no rollout id (a deploy stamps one; KServe does not need it), no previous
    model (there is no live service to read)."""
    from kserve_predictor.choice.compatibility import OWN_RUNTIME_ENGINE
    from kserve_predictor.choice.runtime_selection import ServingRuntime, default_runtimes
    from kserve_predictor.kserve.runtime_manifest import serving_runtime

    if not settings.namespace:
        raise UsageError(
            "--dry-run=client needs --namespace (FUSEML_ENV_WORKFLOW_NAMESPACE): without the "
            "cluster there is no kubeconfig context to take it from; e.g. --namespace models"
        )
    check_host_names(settings.app_name, settings.namespace)
    runtimes = list(default_runtimes())
    if settings.predictor.strip().lower() == OWN_RUNTIME_ENGINE:  # asked for: assume installed
        runtimes.append(ServingRuntime.from_object(serving_runtime()))
    detection, known = _choose_engine(settings, location, runtimes, "defaults")
    engine = _with_protocol(detection.require_engine(), settings.options.protocol, known)
    style = _spec_style(settings.spec_style, lambda: True)  # auto: KServe >= 0.8's model style
    _check_mode(settings, None)
    objects = _manifests(settings, detection, location, engine, limits, style)
    result = _planned(settings, detection, engine, style, objects, DRY_RUN_CLIENT)
    result.not_checked = list(NOT_CHECKED)
    return result


def _planned(
    settings: DeploySettings,
    detection: Detection,
    engine: Engine,
    style: str,
    objects: list[dict[str, Any]],
    dry_run: str,
) -> DeployResult:
    """The result before anything is written: what would be deployed, and where."""
    return DeployResult(
        settings.app_name,
        settings.namespace,
        engine.name,
        engine.protocol,
        storage_uri(objects[-1]),
        style,
        objects,
        dry_run=dry_run,
        compatibility=detection.compatibility.as_dict() if detection.compatibility else None,
    )


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


def _check_compatibility(
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
    return _choose_engine(settings, location, runtimes, source)


def _choose_engine(
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


def _with_protocol(engine: Engine, protocol: str | None, runtimes: list[Any] | None) -> Engine:
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


def _check_mode(settings: DeploySettings, existing: dict[str, Any] | None) -> None:
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


def _spell_mode(
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


def _check_recorded_mode(isvc: dict[str, Any], settings: DeploySettings) -> None:
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


def _check_namespace(cluster: Cluster, namespace: str) -> None:
    if cluster.namespace_exists(namespace) is False:
        raise UsageError(f"namespace {namespace!r} does not exist; create it or choose another")


def _spec_style(asked: str, serves_serving_runtimes: Callable[[], bool]) -> str:
    """The style asked for; ``auto``: model style where the cluster serves the ServingRuntime
    API (asked only then)."""
    if asked in (manifests.MODEL_STYLE, manifests.LEGACY_STYLE):
        return asked
    if asked != "auto":
        raise UsageError(f"spec style {asked!r} is unknown; use auto, model or legacy")
    return manifests.MODEL_STYLE if serves_serving_runtimes() else manifests.LEGACY_STYLE


def _manifests(
    settings: DeploySettings,
    detection: Detection,
    location: ModelLocation,
    engine: Engine,
    limits: dict[str, str],
    style: str,
) -> list[dict[str, Any]]:
    from kserve_predictor.layouts.convert import converted_prefix
    from kserve_predictor.naming import Origin

    app = settings.app_name
    labels = Origin(settings.workflow, settings.project, settings.codeset).labels(app)
    spec = manifests.ServiceSpec(
        name=app,
        namespace=settings.namespace,
        engine=engine,
        # The immutable layout's folder, named by its content: computed from the listing, so a
        # dry run names it too, and a changed model gets a new storageUri (and a rollout).
        storage_uri=location.store.describe(
            converted_prefix(location, detection.info, engine, app)
        ),
        runtime_version=detection.runtime_version,
        limits=limits,
        labels=labels,
        style=style,
        annotations=_annotations(detection),
        options=settings.options,
    )
    return [
        manifests.secret(app, settings.namespace, settings.s3, labels),
        manifests.service_account(app, settings.namespace, labels),
        manifests.inference_service(spec),
    ]


def _annotations(detection: Detection) -> dict[str, str]:
    verdict = detection.compatibility
    if verdict is None or detection.needs is None:
        return {}
    return manifests.compatibility_annotations(
        detection.needs.annotations(), verdict.status, verdict.image, verdict.problems
    )


def _record_previous_model(isvc: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """Name the model this deploy replaces, for rollback (sent on every apply: server-side
    apply would remove an annotation this manager stopped sending)."""
    previous = model_to_record(existing, storage_uri(isvc))
    if previous:
        isvc["metadata"].setdefault("annotations", {})[PREVIOUS] = previous


def _check_ownership(
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
