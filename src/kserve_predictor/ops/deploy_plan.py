"""What a deploy would write, before it writes: the manifests from the model's metadata and the
settings, the planned result, and ``render`` (``--dry-run=client``: the manifests without a
cluster)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kserve_predictor.choice.detect import Detection
from kserve_predictor.engines import Engine
from kserve_predictor.errors import (
    UsageError,
)
from kserve_predictor.kserve import manifests
from kserve_predictor.kserve.isvc import (
    PREVIOUS,
    model_to_record,
    storage_uri,
)
from kserve_predictor.layouts.convert import ConversionResult
from kserve_predictor.model.urls import ModelLocation
from kserve_predictor.naming import check_host_names
from kserve_predictor.ops.deploy_checks import check_mode, choose_engine, with_protocol
from kserve_predictor.redact import masked_repr
from kserve_predictor.settings.groups import DRY_RUN_CLIENT, DeploySettings


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
    detection, known = choose_engine(settings, location, runtimes, "defaults")
    engine = with_protocol(detection.require_engine(), settings.options.protocol, known)
    style = spec_style(settings.spec_style, lambda: True)  # auto: KServe >= 0.8's model style
    check_mode(settings, None)
    objects = build_manifests(settings, detection, location, engine, limits, style)
    result = planned(settings, detection, engine, style, objects, DRY_RUN_CLIENT)
    result.not_checked = list(NOT_CHECKED)
    return result


def planned(
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


def spec_style(asked: str, serves_serving_runtimes: Callable[[], bool]) -> str:
    """The style asked for; ``auto``: model style where the cluster serves the ServingRuntime
    API (asked only then)."""
    if asked in (manifests.MODEL_STYLE, manifests.LEGACY_STYLE):
        return asked
    if asked != "auto":
        raise UsageError(f"spec style {asked!r} is unknown; use auto, model or legacy")
    return manifests.MODEL_STYLE if serves_serving_runtimes() else manifests.LEGACY_STYLE


def build_manifests(
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
        annotations=annotations_for(detection),
        options=settings.options,
    )
    return [
        manifests.secret(app, settings.namespace, settings.s3, labels),
        manifests.service_account(app, settings.namespace, labels),
        manifests.inference_service(spec),
    ]


def annotations_for(detection: Detection) -> dict[str, str]:
    verdict = detection.compatibility
    if verdict is None or detection.needs is None:
        return {}
    return manifests.compatibility_annotations(
        detection.needs.annotations(), verdict.status, verdict.image, verdict.problems
    )


def record_previous_model(isvc: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """Name the model this deploy replaces, for rollback (sent on every apply: server-side
    apply would remove an annotation this manager stopped sending)."""
    previous = model_to_record(existing, storage_uri(isvc))
    if previous:
        isvc["metadata"].setdefault("annotations", {})[PREVIOUS] = previous
