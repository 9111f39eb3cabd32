"""The resource types the server serves, and the small JSON helpers every layer uses.

The types stand for the API groups a cluster with KServe installed serves: core v1 and
``serving.kserve.io`` (what kube-apiserver registers per group in its REST storage providers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import yaml

KSERVE_GROUP = "serving.kserve.io"


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MISSING: Any = object()

Obj = dict[str, Any]
FieldPath = tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Resource types


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    custom: bool = False  # CRD semantics: generation, PUT needs resourceVersion, no strategic merge
    status_subresource: bool = False
    short_names: tuple[str, ...] = ()
    crd_file: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource_ref(self) -> str:
        """How messages name the resource: ``secrets``, ``inferenceservices.serving.kserve.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_ref(self) -> str:
        """How ``Invalid`` messages name the kind: ``Secret``, ``InferenceService.serving...``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def details(self, name: str | None) -> Obj:
        details: Obj = {"name": name, "kind": self.plural}
        if self.group:
            details["group"] = self.group
        return {k: v for k, v in details.items() if v}


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", False, status_subresource=True)
SECRETS = ResourceType("", "v1", "secrets", "Secret", True)
SERVICE_ACCOUNTS = ResourceType(
    "", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)
)
PODS = ResourceType("", "v1", "pods", "Pod", True, status_subresource=True, short_names=("po",))
INFERENCE_SERVICES = ResourceType(
    KSERVE_GROUP,
    "v1beta1",
    "inferenceservices",
    "InferenceService",
    True,
    custom=True,
    status_subresource=True,
    short_names=("isvc",),
    crd_file="serving.kserve.io_inferenceservices.yaml",
)
SERVING_RUNTIMES = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "servingruntimes",
    "ServingRuntime",
    True,
    custom=True,
    crd_file="serving.kserve.io_servingruntimes.yaml",
)
CLUSTER_SERVING_RUNTIMES = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "clusterservingruntimes",
    "ClusterServingRuntime",
    False,
    custom=True,
    crd_file="serving.kserve.io_clusterservingruntimes.yaml",
)
RESOURCE_TYPES = {
    rt.plural: rt
    for rt in (
        NAMESPACES,
        SECRETS,
        SERVICE_ACCOUNTS,
        PODS,
        INFERENCE_SERVICES,
        SERVING_RUNTIMES,
        CLUSTER_SERVING_RUNTIMES,
    )
}
_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _resource_type(plural: str) -> ResourceType:
    try:
        return RESOURCE_TYPES[plural]
    except KeyError:
        raise KeyError(f"unknown resource {plural!r}; known: {sorted(RESOURCE_TYPES)}") from None


# --------------------------------------------------------------------------------------------
# Small JSON helpers


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _get_path(obj: Any, path: FieldPath) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "integer" if isinstance(value, int) else "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), "null")
