"""KServe's admission webhooks for InferenceServices: the defaulter (mutating) and the
validator (validating), as this server copies them."""

from __future__ import annotations

import re
from typing import Any

from .errors import ApiError
from .resources import Obj

# --------------------------------------------------------------------------------------------
# KServe's admission webhooks for InferenceServices

_ISVC_VALIDATOR = "inferenceservice.kserve-webhook-server.validator"
_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Legacy framework fields and the Go field names KServe's message lists.
_FRAMEWORKS = {
    "sklearn": "SKLearn",
    "xgboost": "XGBoost",
    "tensorflow": "Tensorflow",
    "pytorch": "PyTorch",
    "triton": "Triton",
    "onnx": "ONNX",
    "huggingface": "HuggingFace",
    "pmml": "PMML",
    "lightgbm": "LightGBM",
    "paddle": "Paddle",
}
_STORAGE_PREFIXES = (
    "gs://",
    "s3://",
    "pvc://",
    "file://",
    "https://",
    "http://",
    "hdfs://",
    "webhdfs://",
    "oci://",
    "hf://",
)


def _webhook_denied(message: str) -> ApiError:
    return ApiError(403, f'admission webhook "{_ISVC_VALIDATOR}" denied the request: {message}')


def _implementations(predictor: Obj) -> list[str]:
    return [key for key in (*_FRAMEWORKS, "model") if predictor.get(key) is not None]


def kserve_default(isvc: Obj, release: tuple[int, int] = (0, 20)) -> None:
    """KServe's defaulter: a lone legacy ``predictor.<framework>`` becomes ``predictor.model``;
    from v0.17 a legacy deployment mode name is rewritten to the current one
    (inference_service_defaults.go, kserve#5025)."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    mode = annotations.get("serving.kserve.io/deploymentMode")
    if release >= (0, 17) and mode in _LEGACY_MODES:
        annotations["serving.kserve.io/deploymentMode"] = _LEGACY_MODES[mode]
    predictor = (isvc.get("spec") or {}).get("predictor")
    if not isinstance(predictor, dict):
        return
    found = _implementations(predictor)
    if len(found) != 1 or found[0] == "model" or not isinstance(predictor[found[0]], dict):
        return
    legacy = predictor.pop(found[0])
    predictor["model"] = {"modelFormat": {"name": found[0]}, **legacy}


_AUTOSCALER_CLASSES = ("hpa", "external", "keda", "none")  # AutoscalerAllowedClassList
_LEGACY_MODES = {"RawDeployment": "Standard", "Serverless": "Knative"}


def kserve_validate(isvc: Obj, old: Obj | None = None, release: tuple[int, int] = (0, 20)) -> None:
    """KServe's validating webhook rules this server copies; raises a 403 denial."""
    name = isvc["metadata"]["name"]
    if not _ISVC_NAME.match(name):
        raise _webhook_denied(
            f'The InferenceService "{name}" is invalid: a InferenceService name must consist of '
            "lower case alphanumeric characters or '-', and must start with alphabetical "
            f'character. (e.g. "my-name" or "abc-123", regex used for validation is '
            f"'{_ISVC_NAME.pattern[1:-1]}')"
        )
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    found = _implementations(predictor)
    custom_container = not found and bool(predictor.get("containers"))
    if len(found) != 1 and not custom_container:
        names = ", ".join([*_FRAMEWORKS.values(), "Model", "PodSpec"])
        raise _webhook_denied(f"Exactly one of [{names}] must be specified in PredictorSpec")
    _validate_storage_uri((predictor.get(found[0]) or {}).get("storageUri") if found else None)
    _validate_replicas(predictor)
    annotations = isvc["metadata"].get("annotations") or {}
    autoscaler = annotations.get("serving.kserve.io/autoscalerClass")
    if autoscaler is not None and autoscaler not in _AUTOSCALER_CLASSES:
        raise _webhook_denied(f"[{autoscaler}] is not a supported autoscaler class type")
    if old is not None and not isvc["metadata"].get("deletionTimestamp"):
        _validate_deployment_mode(annotations, old, release)
    _validate_scaling(annotations, predictor)


def _validate_deployment_mode(
    annotations: dict[str, str], old: Obj, release: tuple[int, int]
) -> None:
    # validateDeploymentMode (inference_service_validation.go, v0.15.1 and later): the
    # annotation (as written, after the defaulter) against the recorded mode, which v0.19 and
    # later normalize (ParseDeploymentMode) and earlier releases compare as it is.
    recorded = str((old.get("status") or {}).get("deploymentMode") or "")
    if release >= (0, 19):
        recorded = _LEGACY_MODES.get(recorded, recorded)
    asked = annotations.get("serving.kserve.io/deploymentMode")
    if recorded and asked is not None and asked != recorded:
        raise _webhook_denied(
            f"update rejected: deploymentMode cannot be changed from '{recorded}' to '{asked}'"
        )


def _validate_scaling(annotations: dict[str, str], predictor: Obj) -> None:
    # validateAutoScalingCompExtension: Standard+hpa (cpu/memory, cpu target 1-100),
    # Standard+keda (no scaleMetric), anything else the Knative rules (concurrency/rps).
    mode = annotations.get("serving.kserve.io/deploymentMode")
    autoscaler = annotations.get("serving.kserve.io/autoscalerClass")
    knative_class = annotations.get("autoscaling.knative.dev/class")
    metric, target = predictor.get("scaleMetric"), predictor.get("scaleTarget")
    if mode == "Standard":
        if autoscaler == "hpa":
            _validate_hpa(metric, target)
        elif autoscaler == "keda" and metric is not None:
            raise _webhook_denied("ScaleMetric is not supported for KEDA")
        return
    if knative_class == "hpa.autoscaling.knative.dev":
        _validate_hpa(metric, target)
        return
    if predictor.get("deploymentStrategy") is not None:
        raise _webhook_denied(
            "customizing deploymentStrategy is only supported for raw deployment mode"
        )
    metric = metric or "concurrency"
    if metric not in ("concurrency", "rps"):
        raise _webhook_denied(f"[{metric}] is not a supported metric")
    if metric == "rps" and isinstance(target, int) and target < 1:
        raise _webhook_denied("the target for rps should be greater than 1")


def _validate_hpa(metric: Any, target: Any) -> None:
    metric = metric or "cpu"
    if metric not in ("cpu", "memory"):
        raise _webhook_denied(f"[{metric}] is not a supported metric")
    if isinstance(target, int) and ((metric == "cpu" and target < 1) or target > 100):
        raise _webhook_denied("the target utilization percentage should be a [1-100] integer")
    if isinstance(target, int) and metric == "memory" and target < 1:
        raise _webhook_denied("the target memory should be greater than 1 MiB")


def _validate_storage_uri(uri: Any) -> None:
    # KServe accepts local paths; a URI with a scheme must use one of its storage schemes.
    if isinstance(uri, str) and "://" in uri and not uri.startswith(_STORAGE_PREFIXES):
        raise _webhook_denied(
            f"storageUri, must be one of: [{', '.join(_STORAGE_PREFIXES)}] or match "
            "https://{}.blob.core.windows.net/{}/{} or be an absolute or relative local path. "
            f"StorageUri [{uri}] is not supported."
        )


def _validate_replicas(predictor: Obj) -> None:
    low, high = predictor.get("minReplicas"), predictor.get("maxReplicas") or 0
    if isinstance(low, int) and low < 0:
        raise _webhook_denied("MinReplicas cannot be less than 0.")
    if isinstance(high, int) and high < 0:
        raise _webhook_denied("MaxReplicas cannot be less than 0.")
    if isinstance(low, int) and isinstance(high, int) and high and low > high:
        raise _webhook_denied("MinReplicas cannot be greater than MaxReplicas.")
