"""KServe's serving options (canary, autoscaling, deployment mode, protocol, logger, placement,
overlay): one typed value, parsed once from CLI flags, FUSEML_<NAME> variables or MLflow
deployments config keys, and applied to the generated InferenceService.

Each option has one name: the config key ``name``, the variable ``FUSEML_<NAME>`` and the flag
``--<name with dashes>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from kserve_predictor.errors import UsageError
from kserve_predictor.settings.placement import node_selector, structured, tolerations


@dataclass(frozen=True)
class ServingOptions:
    """What the user asked of KServe beyond the model; all unset (None) by default, and an unset
    option leaves the InferenceService field to KServe's default."""

    canary_traffic_percent: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    scale_target: int | None = None
    scale_metric: str | None = None
    autoscaler_class: str | None = None
    deployment_mode: str | None = None
    protocol: str | None = None
    logger: str | None = None
    """Payload logging sink URL."""
    logger_mode: str | None = None
    request_timeout: int | None = None
    container_concurrency: int | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[dict[str, Any]] | None = None
    gpu: int | None = None
    overlay: dict[str, Any] | None = None
    """A JSON merge patch (RFC 7386) applied over the generated InferenceService."""


NAMES: tuple[str, ...] = tuple(f.name for f in fields(ServingOptions))

# KServe's values (pkg/constants/constants.go). Since v0.15 the modes are Standard and Knative;
# the legacy names are still read and mean the same (ParseDeploymentMode).
STANDARD, KNATIVE = "Standard", "Knative"
LEGACY_MODES = {"RawDeployment": STANDARD, "Serverless": KNATIVE}
AUTOSCALER_CLASSES = ("hpa", "external", "keda", "none")  # AutoscalerAllowedClassList
SCALE_METRICS = ("cpu", "memory", "concurrency", "rps")  # the CRD's scaleMetric enum
PROTOCOLS = ("v1", "v2", "grpc-v2")
LOGGER_MODES = ("all", "request", "response")  # the CRD's logger.mode enum
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
"""The taint NVIDIA's GPU operator and the managed GPU node pools put on GPU nodes."""
IDENTITY = ("apiVersion", "kind")
IDENTITY_METADATA = ("name", "namespace")
OWN_LABEL_PREFIXES = ("app.kubernetes.io/managed-by", "fuseml/")
_INT32 = 2**31 - 1

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
AUTOSCALER_ANNOTATION = "serving.kserve.io/autoscalerClass"


def spelling_for_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def spelling_for_env(name: str) -> str:
    return "FUSEML_" + name.upper()


def spelling_for_both(name: str) -> str:
    """For checks after parsing, where the source is no longer known."""
    return f"{spelling_for_flag(name)} ({spelling_for_env(name)})"


def from_args(args: Any) -> ServingOptions:
    """The options of ``deploy``'s "serving options" flags (attribute names are option names)."""
    values = {name: _text(getattr(args, name, None)) for name in NAMES}
    return parse(values, spelling_for_flag)


def from_env(env: Mapping[str, str]) -> ServingOptions:
    """The options of the FuseML step: FUSEML_<NAME>, empty meaning unset."""
    values = {name: env.get(spelling_for_env(name)) for name in NAMES}
    return parse(values, spelling_for_env)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def normal_mode(mode: str | None) -> str | None:
    """A deployment mode under its current name (legacy names mapped as KServe maps them)."""
    return LEGACY_MODES.get(mode, mode) if mode else None


def parse(
    values: Mapping[str, str | None], spelling: Callable[[str], str] = lambda name: name
) -> ServingOptions:
    """Options from their text forms; ``spelling(name)`` is how the user wrote the name
    (``--min-replicas``, ``FUSEML_MIN_REPLICAS``, ``config key min_replicas``), for errors."""
    for name, value in values.items():
        if name not in NAMES and value not in (None, ""):
            raise UsageError(f"{spelling(name)} is not a serving option")
    given = {
        name: str(value).strip()
        for name, value in values.items()
        if name in NAMES and value is not None and str(value).strip()
    }
    parsed: dict[str, Any] = {}
    for name, text in given.items():
        parsed[name] = _PARSERS[name](text, spelling(name))
    options = ServingOptions(**parsed)
    _check_together(options, spelling)
    return options


def _integer(low: int, high: int = _INT32, hint: str = "") -> Callable[[str, str], int]:
    def parse_int(text: str, where: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            bound = f"from {low} to {high}" if high != _INT32 else f"of at least {low}"
            raise UsageError(f"{where}={text!r} is not a whole number {bound}{hint}")
        return value

    return parse_int


def _choice(allowed: tuple[str, ...], why: str = "") -> Callable[[str, str], str]:
    def parse_choice(text: str, where: str) -> str:
        if text not in allowed:
            raise UsageError(f"{where}={text!r} is not one of {', '.join(allowed)}{why}")
        return text

    return parse_choice


def _mode(text: str, where: str) -> str:
    if text == "ModelMesh":
        raise UsageError(
            f"{where}=ModelMesh is not supported: ModelMesh serves many models per pod from its "
            "own controller; use Standard or Knative"
        )
    allowed = (STANDARD, KNATIVE, *LEGACY_MODES)
    if text not in allowed:
        raise UsageError(f"{where}={text!r} is not one of {', '.join(allowed)}")
    # Written under its current name: KServe's validator branches on "Standard" literally, so a
    # legacy "RawDeployment" would be checked with the Knative (concurrency/rps) rules.
    return LEGACY_MODES.get(text, text)


def _url(text: str, where: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(
            f"{where}={text!r} is not an http(s) URL; use e.g. "
            "http://message-dumper.default.svc.cluster.local"
        )
    return text


def _overlay(text: str, where: str) -> dict[str, Any]:
    example = "'{spec: {predictor: {priorityClassName: high}}}'"
    given = structured(text, where, example)
    if not isinstance(given, dict) or not given:
        raise UsageError(f"{where} is not a mapping (a JSON merge patch); use e.g. {example}")
    for key in IDENTITY:
        if key in given:
            raise UsageError(
                f"{where} may not change {key}; it patches the generated InferenceService"
            )
    metadata = given.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise UsageError(f"{where}: metadata must be a mapping")
    for key in IDENTITY_METADATA:
        if key in (metadata or {}):
            raise UsageError(f"{where} may not change metadata.{key}; use --app-name / --namespace")
    labels = (metadata or {}).get("labels")
    ours = [k for k in labels or {} if str(k).startswith(OWN_LABEL_PREFIXES)]
    if ours:
        # Ownership (delete, re-runs, other workflows) is read from these labels.
        raise UsageError(f"{where} may not change the label {ours[0]}; it records the owner")
    return given


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "canary_traffic_percent": _integer(0, 100, " (percent of traffic to the new model)"),
    "min_replicas": _integer(0),
    "max_replicas": _integer(1),
    "scale_target": _integer(1),
    "scale_metric": _choice(SCALE_METRICS),
    "autoscaler_class": _choice(AUTOSCALER_CLASSES, " (KServe's autoscalerClass values)"),
    "deployment_mode": _mode,
    "protocol": _choice(PROTOCOLS),
    "logger": _url,
    "logger_mode": _choice(LOGGER_MODES),
    "request_timeout": _integer(1, hint=" of seconds"),
    "container_concurrency": _integer(0, hint=" (0: no limit)"),
    "node_selector": node_selector,
    "tolerations": tolerations,
    "gpu": _integer(1, hint=" of GPUs"),
    "overlay": _overlay,
}


def _check_together(o: ServingOptions, spelling: Callable[[str], str]) -> None:
    """Rules between options that do not depend on the cluster."""
    if (
        o.max_replicas is not None
        and o.min_replicas is not None
        and o.max_replicas < o.min_replicas
    ):
        raise UsageError(
            f"{spelling('max_replicas')}={o.max_replicas} is below "
            f"{spelling('min_replicas')}={o.min_replicas}; raise it or lower the minimum"
        )
    if o.logger_mode is not None and o.logger is None:
        raise UsageError(
            f"{spelling('logger_mode')} needs {spelling('logger')}, the URL payloads are sent to"
        )
    mode = o.deployment_mode
    if mode == KNATIVE and o.autoscaler_class is not None:
        raise UsageError(
            f"{spelling('autoscaler_class')} applies to Standard mode only; Knative mode scales "
            f"with Knative's autoscaler (drop it or set {spelling('deployment_mode')}=Standard)"
        )
    if mode == STANDARD:
        _refuse_in_standard(o, spelling)
    if o.scale_metric is not None:
        hpa = mode == STANDARD and o.autoscaler_class in (None, "hpa")
        knative = mode == KNATIVE
        if hpa and o.scale_metric not in ("cpu", "memory"):
            raise UsageError(
                f"{spelling('scale_metric')}={o.scale_metric} is not an HPA metric (Standard "
                "mode): use cpu or memory"
            )
        if knative and o.scale_metric not in ("concurrency", "rps"):
            raise UsageError(
                f"{spelling('scale_metric')}={o.scale_metric} is not a Knative metric: use "
                "concurrency or rps"
            )
        if mode == STANDARD and o.autoscaler_class == "keda":
            raise UsageError(
                f"{spelling('scale_metric')} is not supported with KEDA (KServe refuses it); drop it"
            )
    if o.scale_metric == "cpu" and o.scale_target is not None and o.scale_target > 100:
        raise UsageError(
            f"{spelling('scale_target')}={o.scale_target} is not a CPU utilization percentage "
            "(1-100)"
        )


def _refuse_in_standard(
    o: ServingOptions, spelling: Callable[[str], str], fix: str | None = None
) -> None:
    """What Standard (raw Deployment) mode cannot do, said before KServe ignores it."""
    fix = fix or f"set {spelling('deployment_mode')}=Knative"
    if o.canary_traffic_percent is not None:
        raise UsageError(
            f"{spelling('canary_traffic_percent')} needs Knative mode (a traffic split between "
            f"revisions), not Standard; {fix}, or drop it"
        )
    if o.min_replicas == 0:
        # KServe's raw HPA raises a minimum below 1 to 1 (calculateMinReplicas): no scale to zero.
        raise UsageError(
            f"{spelling('min_replicas')}=0 needs Knative mode: in Standard mode KServe keeps at "
            f"least 1 replica; {fix}, or use 1"
        )


def recorded_mode(isvc: Mapping[str, Any] | None) -> str | None:
    """The mode an existing InferenceService runs in: status.deploymentMode (KServe >= 0.15
    records it and reads it first), else its annotation; None when neither says."""
    if not isvc:
        return None
    status = isvc.get("status") or {}
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    return status.get("deploymentMode") or annotations.get(MODE_ANNOTATION) or None


def check_mode(options: ServingOptions, mode: str | None) -> None:
    """The mode-dependent rules for the mode the service will have when the options did not
    name it (the existing service's recorded mode); an unknown mode refuses nothing."""
    if options.deployment_mode is None and normal_mode(mode) == STANDARD:
        fix = "the service runs in Standard mode: deploy under a new --app-name in Knative mode"
        _refuse_in_standard(options, spelling_for_both, fix)


def described(options: ServingOptions) -> dict[str, Any]:
    """The options set, by name (for the plan and JSON output)."""
    return {
        f.name: getattr(options, f.name)
        for f in fields(options)
        if getattr(options, f.name) is not None
    }


PREDICT_PROBA_ENV = "PREDICT_PROBA"
"""kserve/sklearnserver's switch from predict to predict_proba (python/sklearnserver/
sklearnserver/model.py: os.environ.get("PREDICT_PROBA", "false").lower() == "true"). The product
never writes it; a user asks for probabilities by setting it through --overlay."""


def asks_probabilities(options: ServingOptions) -> bool:
    """Does the overlay set PREDICT_PROBA=true on the predictor's container (spec.predictor.model
    or the legacy spec.predictor.<framework>), as the sklearn server reads it?"""
    spec = (options.overlay or {}).get("spec")
    predictor = spec.get("predictor") if isinstance(spec, dict) else None
    if not isinstance(predictor, dict):
        return False
    for container in predictor.values():
        env = container.get("env") if isinstance(container, dict) else None
        for item in env if isinstance(env, list) else []:
            if (
                isinstance(item, dict)
                and item.get("name") == PREDICT_PROBA_ENV
                and str(item.get("value", "")).lower() == "true"
            ):
                return True
    return False
