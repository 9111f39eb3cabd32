"""Pure readings of an InferenceService: which field holds the model, its storageUri and engine,
the prediction URL, the traffic split and what a deploy records. No I/O: every command and both
targets read a service through these functions."""

from __future__ import annotations

from typing import Any

from kserve_predictor.engines import ENGINES, Engine
from kserve_predictor.kserve import readiness

Manifest = dict[str, Any]


def implementation_field(isvc: Manifest) -> str | None:
    """Which predictor field holds the model (``model``, or a legacy ``<framework>``): the
    mapping with the storageUri, in either spec style."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    return next(
        (k for k, v in predictor.items() if isinstance(v, dict) and "storageUri" in v), None
    )


def storage_uri(isvc: Manifest) -> str:
    """The InferenceService's storageUri ("" when its spec names none)."""
    field = implementation_field(isvc)
    return str(isvc["spec"]["predictor"][field]["storageUri"]) if field else ""


def engine_of(isvc: dict[str, Any]) -> tuple[Engine | None, str, str]:
    """The engine, protocol and storageUri an InferenceService spec says, in either style."""
    key = implementation_field(isvc)
    if key is None:
        return None, "", ""
    value = isvc["spec"]["predictor"][key]
    fmt = (value.get("modelFormat") or {}).get("name") if key == "model" else key
    engine = next(
        (e for e in ENGINES.values() if e.model_format == fmt or e.legacy_field == fmt), None
    )
    protocol = str(value.get("protocolVersion") or (engine.protocol if engine else "v1"))
    return engine, protocol, str(value["storageUri"])


def prediction_url(base_url: str, engine: Engine, app_name: str, protocol: str = "") -> str:
    """status.url + the protocol's path for the runtime's model name (DESIGN.md §3); for gRPC
    the host and port to dial (the model name goes in each request)."""
    protocol = protocol or engine.protocol
    name = engine.served_model_name(app_name)
    if protocol == "grpc-v2":
        return grpc_target(base_url)
    path = f"/v1/models/{name}:predict" if protocol == "v1" else f"/v2/models/{name}/infer"
    return base_url.rstrip("/") + path


def grpc_target(base_url: str) -> str:
    """grpc://host:port of status.url: KServe serves gRPC (h2c, or TLS on https) on the
    service's own host and port."""
    from urllib.parse import urlparse

    if not base_url:
        return ""
    parsed = urlparse(base_url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"grpc{'s' if parsed.scheme == 'https' else ''}://{parsed.hostname}:{port}"


PREVIOUS = "kserve-predictor/previous-storage-uri"
"""The storageUri of the model rolled out before the current spec's (deploy records it)."""


CANARY = "canaryTrafficPercent"


def canary_percent(isvc: dict[str, Any]) -> int | None:
    value = ((isvc.get("spec") or {}).get("predictor") or {}).get(CANARY)
    return None if value is None else int(value)


def previous_model(isvc: dict[str, Any]) -> str:
    return str(((isvc.get("metadata") or {}).get("annotations") or {}).get(PREVIOUS) or "")


def on_revision(isvc: dict[str, Any], revision: str) -> int:
    """Percent of the traffic the status routes to ``revision``."""
    traffic = readiness.predictor_status(isvc).get("traffic") or []
    return sum(int(t.get("percent") or 0) for t in traffic if t.get("revisionName") == revision)


def split(isvc: dict[str, Any]) -> dict[str, Any] | None:
    """The traffic split the status reports, each revision with its model; None when the
    service has no Knative revisions (Standard mode, or not reconciled yet)."""
    component = readiness.predictor_status(isvc)
    if not component.get("latestCreatedRevision"):
        return None
    created = str(component["latestCreatedRevision"])
    ready = str(component.get("latestReadyRevision") or "")
    rolled_out = str(component.get("latestRolledoutRevision") or "")
    current = storage_uri(isvc)
    previous = previous_model(isvc)
    # KServe may name one revision twice (the latest and the "prev" target both resolve to it
    # when nothing else was rolled out): one entry per revision, percents summed.
    percents: dict[str, int] = {}
    tags: dict[str, list[str]] = {}
    for target in component.get("traffic") or []:
        revision = str(target.get("revisionName") or "")
        percents[revision] = percents.get(revision, 0) + int(target.get("percent") or 0)
        tags.setdefault(revision, []).extend([target["tag"]] if target.get("tag") else [])
    entries = []
    for revision, percent in percents.items():
        if revision == created:
            canary = canary_percent(isvc) is not None and percent < 100
            role, model = ("canary" if canary else "current"), current
        elif revision == rolled_out or "prev" in tags[revision]:
            role, model = "previous", previous
        else:
            role, model = "older", ""  # a revision whose model this product did not record
        entries.append(
            {
                "revision": revision,
                "percent": percent,
                "tags": tags[revision],
                "role": role,
                "storage_uri": model,
                # Knative routes only to ready revisions: a revision in the traffic is ready.
                "ready": revision == ready or revision != created,
            }
        )
    return {
        "canary_traffic_percent": canary_percent(isvc),
        "latest_created_revision": created,
        "latest_ready_revision": ready,
        "latest_rolledout_revision": rolled_out,
        "previous_rolledout_revision": str(component.get("previousRolledoutRevision") or ""),
        "storage_uri": current,
        "previous_storage_uri": previous,
        "traffic": entries,
    }


def describe_split(view: dict[str, Any] | None) -> str:
    """One line: ``20% iris-predictor-00002 (canary, s3://…), 80% … (previous, s3://…)``."""
    if not view or not view["traffic"]:
        return "no traffic routed yet"
    return ", ".join(
        f"{t['percent']}% {t['revision']} ({t['role']}"
        + (f", {t['storage_uri']}" if t["storage_uri"] else "")
        + ")"
        for t in view["traffic"]
    )


def fully_on_latest(isvc: dict[str, Any]) -> bool:
    component = readiness.predictor_status(isvc)
    created = str(component.get("latestCreatedRevision") or "")
    return component.get("latestReadyRevision") == created and on_revision(isvc, created) == 100


def model_to_record(existing: dict[str, Any] | None, new_storage_uri: str) -> str:
    """The PREVIOUS annotation a deploy of ``new_storage_uri`` writes ("" for none): the model
    rolled out now, which KServe keeps serving beside a canary and rollback returns to."""
    if existing is None:
        return ""
    recorded = previous_model(existing)
    current = storage_uri(existing)
    percent = canary_percent(existing)
    if percent is not None and percent < 100:
        # A canary is in progress: KServe's rolled-out revision is still the recorded one.
        return recorded
    if current == new_storage_uri:
        return recorded  # the same model again: nothing is replaced
    return current


def served_prediction_url(isvc: Manifest) -> str:
    """The prediction URL a stored InferenceService answers at: status.url and its engine's
    path ("" before KServe has written a URL)."""
    engine = engine_of(isvc)[0]
    url = str((isvc.get("status") or {}).get("url") or "")
    return prediction_url(url, engine, isvc["metadata"]["name"]) if url and engine else url
