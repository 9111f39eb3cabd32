"""Which ServingRuntime KServe will pick for an InferenceService, by KServe's own rules.

The rules of KServe's controller (pkg/apis/serving/v1beta1/predictor_model.go,
``GetSupportingRuntimes``), restated:

- an explicit ``runtime`` names the runtime; its formats then match whether or not they
  autoSelect;
- otherwise a runtime matches when a ``supportedModelFormats`` entry with ``autoSelect: true``
  has the model format's name (and version, when the InferenceService sends one);
- disabled and multi-model runtimes never match; the runtime's ``protocolVersions`` (when it
  lists any) must contain the InferenceService's protocol (unset means v1);
- namespaced ServingRuntimes come before ClusterServingRuntimes; within each scope the lists
  are ordered by lowest protocol version, then newest first, then name, and then stably by the
  format's ``priority`` (highest first; runtimes without one after those with one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from kserve_predictor.choice.image_libraries import with_tag

DEFAULTS_RELEASE = "v0.20.0"
# constants.ProtocolVersion order in KServe: V1, V2, GRPCV1, GRPCV2, then Unknown.
_PROTOCOL_RANK = {"v1": 0, "v2": 1, "grpc-v1": 2, "grpc-v2": 3}
_UNKNOWN_PROTOCOL = 4


@dataclass(frozen=True)
class ServingRuntime:
    """A ServingRuntime or ClusterServingRuntime as selection sees it."""

    name: str
    scope: str
    """namespaced or cluster."""
    spec: dict[str, Any]
    created: str = ""
    """metadata.creationTimestamp (RFC 3339 sorts as text)."""

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> ServingRuntime:
        meta = obj.get("metadata") or {}
        scope = "cluster" if obj.get("kind") == "ClusterServingRuntime" else "namespaced"
        return cls(
            str(meta.get("name", "")),
            scope,
            dict(obj.get("spec") or {}),
            str(meta.get("creationTimestamp") or ""),
        )

    @property
    def image(self) -> str:
        containers = self.spec.get("containers") or [{}]
        return str(containers[0].get("image") or "")

    @property
    def kind(self) -> str:
        return "ClusterServingRuntime" if self.scope == "cluster" else "ServingRuntime"

    def _formats(self) -> list[dict[str, Any]]:
        return list(self.spec.get("supportedModelFormats") or [])

    def priority(self, format_name: str) -> int | None:
        """The priority of the first entry of that format name (KServe's GetPriority)."""
        entry = next((f for f in self._formats() if f.get("name") == format_name), None)
        return None if entry is None or entry.get("priority") is None else int(entry["priority"])

    def supports(
        self, format_name: str, format_version: str | None, protocol: str, explicit: bool
    ) -> bool:
        if self.spec.get("disabled") or self.spec.get("multiModel"):
            return False
        protocols = self.spec.get("protocolVersions") or []
        if protocols and protocol not in protocols:
            return False
        labels = set()
        for entry in self._formats():
            if explicit or entry.get("autoSelect") is True:
                labels.add(str(entry.get("name")))
                if entry.get("version") is not None:
                    labels.add(f"{entry.get('name')}:{entry['version']}")
        wanted = f"{format_name}:{format_version}" if format_version else format_name
        return wanted in labels

    def _protocol_rank(self) -> int:
        protocols = self.spec.get("protocolVersions") or []
        if not protocols:
            return _UNKNOWN_PROTOCOL
        return min(_PROTOCOL_RANK.get(p, _UNKNOWN_PROTOCOL) for p in protocols)


@dataclass(frozen=True)
class Selection:
    """The runtime KServe will use, and the image it will run."""

    runtime: ServingRuntime
    image: str
    """The runtime's image with ``runtimeVersion`` applied as its tag."""
    source: str
    """cluster, or defaults (KServe's release defaults: the cluster was not read)."""


def _ordered(runtimes: list[ServingRuntime]) -> list[ServingRuntime]:
    # sortServingRuntimeList: lowest protocol first, then newest, then by name.
    by_name = sorted(runtimes, key=lambda r: r.name)
    by_age = sorted(by_name, key=lambda r: r.created, reverse=True)
    return sorted(by_age, key=lambda r: r._protocol_rank())


def _by_priority(runtimes: list[ServingRuntime], format_name: str) -> list[ServingRuntime]:
    # sortSupportedRuntimeByPriority: with a priority before without; higher first; else kept.
    def key(r: ServingRuntime) -> tuple[int, int]:
        p = r.priority(format_name)
        return (1, 0) if p is None else (0, -p)

    return sorted(runtimes, key=key)


def supporting_runtimes(
    runtimes: list[ServingRuntime],
    format_name: str,
    protocol: str | None,
    format_version: str | None = None,
    explicit: str | None = None,
) -> list[ServingRuntime]:
    """Every runtime that supports the model, in KServe's order of preference."""
    protocol = protocol or "v1"
    found: list[ServingRuntime] = []
    for scope in ("namespaced", "cluster"):
        candidates = [
            r
            for r in _ordered([r for r in runtimes if r.scope == scope])
            if (explicit is None or r.name == explicit)
            and r.supports(format_name, format_version, protocol, explicit is not None)
        ]
        found += _by_priority(candidates, format_name)
    return found


def select(
    runtimes: list[ServingRuntime],
    format_name: str,
    protocol: str | None,
    runtime_version: str | None = None,
    format_version: str | None = None,
    explicit: str | None = None,
    source: str = "cluster",
) -> Selection | None:
    """The runtime KServe picks (None: "No runtime found"), with its image as it will run."""
    found = supporting_runtimes(runtimes, format_name, protocol, format_version, explicit)
    if not found:
        return None
    runtime = found[0]
    image = with_tag(runtime.image, runtime_version) if runtime_version else runtime.image
    return Selection(runtime, image, source)


@cache
def default_runtimes() -> tuple[ServingRuntime, ...]:
    """The ClusterServingRuntimes of a default KServe install (package data)."""
    path = f"data/kserve_runtimes_{DEFAULTS_RELEASE}.yaml"
    text = resources.files("kserve_predictor").joinpath(path).read_text()
    return tuple(ServingRuntime.from_object(d) for d in yaml.safe_load_all(text) if d)
