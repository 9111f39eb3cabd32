"""The Kubernetes objects of a deployment, as pure functions returning dicts.

Secret ``<app>-kserve`` (S3 credentials and KServe's S3 annotations), ServiceAccount
``<app>-kserve`` referencing it, and InferenceService ``<app>`` in either spec style:
``predictor.model`` (modelFormat, for clusters serving the ServingRuntime API) or the legacy
``predictor.<framework>`` fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import yaml

from kserve_predictor.engines import Engine
from kserve_predictor.errors import UsageError
from kserve_predictor.settings.groups import S3Settings
from kserve_predictor.settings.serving import (
    AUTOSCALER_ANNOTATION,
    GPU_RESOURCE,
    GPU_TOLERATION,
    MODE_ANNOTATION,
    ServingOptions,
)

MODEL_STYLE = "model"
LEGACY_STYLE = "legacy"

DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
DEFAULT_LIMITS = {"cpu": "1", "memory": "2Gi"}

Manifest = dict[str, Any]


@dataclass(frozen=True)
class ServiceSpec:
    """Everything the InferenceService says, decided before any object is built."""

    name: str
    namespace: str
    engine: Engine
    storage_uri: str
    runtime_version: str | None = None
    limits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    labels: dict[str, str] = field(default_factory=dict)
    style: str = MODEL_STYLE
    annotations: dict[str, str] = field(default_factory=dict)
    """InferenceService annotations (trained library versions, compatibility verdict)."""
    options: ServingOptions = field(default_factory=ServingOptions)
    """KServe's serving options; the overlay is merged last."""


def credentials_name(app: str) -> str:
    return f"{app}-kserve"


def secret(app: str, namespace: str, s3: S3Settings, labels: dict[str, str]) -> Manifest:
    """The S3 credentials for KServe's storage initializer, with its endpoint annotations."""
    annotations = {
        "serving.kserve.io/s3-usehttps": "1" if s3.use_https else "0",
        "serving.kserve.io/s3-region": s3.region,
        "serving.kserve.io/s3-verifyssl": "1" if s3.verify_tls else "0",
    }
    if s3.endpoint_url:
        parsed = urlparse(s3.endpoint_url)
        # KServe wants host[:port]; the scheme travels in s3-usehttps, and credentials embedded
        # in the URL never go into an annotation (annotations are readable without Secret access).
        host = parsed.netloc.rsplit("@", 1)[-1]
        annotations["serving.kserve.io/s3-endpoint"] = host + parsed.path.rstrip("/")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(credentials_name(app), namespace, labels, annotations),
        "type": "Opaque",
        "stringData": {
            "AWS_ACCESS_KEY_ID": s3.access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3.secret_access_key,
        },
    }


def service_account(app: str, namespace: str, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(credentials_name(app), namespace, labels),
        "secrets": [{"name": credentials_name(app)}],
    }


def inference_service(spec: ServiceSpec) -> Manifest:
    engine = spec.engine
    implementation: dict[str, Any] = {"storageUri": spec.storage_uri}
    if spec.runtime_version:
        implementation["runtimeVersion"] = spec.runtime_version
    implementation["protocolVersion"] = engine.protocol
    limits = dict(spec.limits)
    if spec.options.gpu is not None:
        limits[GPU_RESOURCE] = str(spec.options.gpu)
    implementation["resources"] = {"requests": requests_within(limits), "limits": limits}
    predictor: dict[str, Any] = {"serviceAccountName": credentials_name(spec.name)}
    predictor.update(_predictor_options(spec.options))
    if spec.style == MODEL_STYLE:
        predictor["model"] = {"modelFormat": {"name": engine.model_format}, **implementation}
        if engine.explicit_runtime:
            predictor["model"]["runtime"] = engine.explicit_runtime
    elif engine.legacy_field:
        predictor[engine.legacy_field] = implementation
    else:
        raise UsageError(
            f"predictor {engine.name!r} needs KServe's ServingRuntime API (predictor.model), which "
            "this cluster does not serve; use --spec-style model on a KServe ≥ 0.8 cluster"
        )
    annotations = {**spec.annotations, **_option_annotations(spec.options)}
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": _metadata(spec.name, spec.namespace, spec.labels, annotations or None),
        "spec": {"predictor": predictor},
    }
    if spec.options.overlay:
        isvc = merge_patch(isvc, spec.options.overlay)
    return isvc


# ServingOptions name -> the predictor (ComponentExtensionSpec) field it sets.
_PREDICTOR_FIELDS = {
    "min_replicas": "minReplicas",
    "max_replicas": "maxReplicas",
    "scale_target": "scaleTarget",
    "scale_metric": "scaleMetric",
    "canary_traffic_percent": "canaryTrafficPercent",
    "request_timeout": "timeout",
    "container_concurrency": "containerConcurrency",
    "node_selector": "nodeSelector",
}


def _predictor_options(options: ServingOptions) -> dict[str, Any]:
    fields: dict[str, Any] = {
        key: getattr(options, name)
        for name, key in _PREDICTOR_FIELDS.items()
        if getattr(options, name) is not None
    }
    if options.logger is not None:
        fields["logger"] = {"url": options.logger, "mode": options.logger_mode or "all"}
    tolerations = list(options.tolerations or [])
    if options.gpu is not None and not any(t.get("key") == GPU_RESOURCE for t in tolerations):
        tolerations.append(dict(GPU_TOLERATION))
    if tolerations:
        fields["tolerations"] = tolerations
    return fields


def _option_annotations(options: ServingOptions) -> dict[str, str]:
    annotations = {}
    if options.deployment_mode:
        annotations[MODE_ANNOTATION] = options.deployment_mode
    if options.autoscaler_class:
        annotations[AUTOSCALER_ANNOTATION] = options.autoscaler_class
    return annotations


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: mappings merge key by key, null removes, anything else
    (lists included) replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def compatibility_annotations(
    trained: dict[str, str], status: str, image: str | None, problems: tuple[str, ...]
) -> dict[str, str]:
    """What ``kubectl describe`` should tell later: the model's trained library versions and the
    compatibility verdict on the runtime image."""
    annotations = {f"kserve-predictor/trained-{name}": v for name, v in sorted(trained.items())}
    annotations["kserve-predictor/compatibility"] = status
    if image:
        annotations["kserve-predictor/runtime-image"] = image
    if problems:
        annotations["kserve-predictor/compatibility-problems"] = "; ".join(problems)
    return annotations


def k8s_resources(app: str) -> list[dict[str, str]]:
    """The objects FuseML lists with the application (and deletes with it)."""
    return [
        {"name": app, "kind": "InferenceService"},
        {"name": credentials_name(app), "kind": "Secret"},
        {"name": credentials_name(app), "kind": "ServiceAccount"},
    ]


def _metadata(
    name: str, namespace: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def parse_limits(text: str | None, source: str = "resources limits") -> dict[str, str]:
    """Default limits with a YAML/JSON mapping merged over them, each a valid quantity.

    E.g. ``{nvidia.com/gpu: 1}`` or ``{"cpu": "2", "memory": "4Gi"}``.
    """
    from kubernetes.utils.quantity import parse_quantity  # the client's own quantity grammar

    limits = dict(DEFAULT_LIMITS)
    if text is None or not text.strip():
        return limits
    try:
        given = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(
            f"{source} {text!r} is not YAML; use a mapping like '{{cpu: 2, nvidia.com/gpu: 1}}'"
        ) from e
    if not isinstance(given, dict):
        raise UsageError(f"{source} {text!r} is not a mapping; use e.g. '{{memory: 4Gi}}'")
    for resource, value in given.items():
        quantity = str(value).strip() if value is not None else ""
        try:
            ok = bool(quantity) and parse_quantity(quantity) >= 0
        except (ValueError, TypeError, ArithmeticError):
            ok = False
        if not ok or not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise UsageError(
                f"{source}: {resource}={json.dumps(value)} is not a Kubernetes quantity; "
                "use e.g. 500m, 2, 4Gi"
            )
        limits[str(resource)] = quantity
    return limits


def requests_within(limits: dict[str, str]) -> dict[str, str]:
    """The default requests, each lowered to its limit: Kubernetes rejects (and a scheduler
    never places) a pod whose request exceeds its limit."""
    from kubernetes.utils.quantity import parse_quantity

    requests = dict(DEFAULT_REQUESTS)
    for resource, request in DEFAULT_REQUESTS.items():
        limit = limits.get(resource)
        if limit is not None and parse_quantity(limit) < parse_quantity(request):
            requests[resource] = limit
    return requests


def to_yaml(manifests: list[Manifest], redact_secrets: bool = True) -> str:
    """Manifests as YAML documents; Secret values masked unless asked otherwise."""
    shown = [redacted(m) if redact_secrets else m for m in manifests]
    return yaml.safe_dump_all(shown, sort_keys=False)


def redacted(manifest: Manifest) -> Manifest:
    if manifest.get("kind") != "Secret":
        return manifest
    copy = json.loads(json.dumps(manifest))
    for section in ("data", "stringData"):
        for key in copy.get(section, {}):
            copy[section][key] = "<redacted>"
    return copy
