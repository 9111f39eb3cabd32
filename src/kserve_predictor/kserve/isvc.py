"""Pure readings of an InferenceService: which field holds the model, its storageUri and engine,
the predictor's status and revisions, the prediction URL, the traffic split and what a deploy
records. No I/O: every command and both targets read a service through these functions, and
readiness.py (the rule of when a rollout serves) and stages.py build on them."""

from __future__ import annotations

from typing import Any

from kserve_predictor.engines import ENGINES, Engine

Manifest = dict[str, Any]


def predictor_spec(isvc: Manifest | None) -> dict[str, Any]:
    """``spec.predictor`` ({} when absent)."""
    return dict(((isvc or {}).get("spec") or {}).get("predictor") or {})


def predictor_status(isvc: Manifest | None) -> dict[str, Any]:
    """``status.components.predictor`` ({} before KServe has written it)."""
    components = ((isvc or {}).get("status") or {}).get("components") or {}
    return dict(components.get("predictor") or {})


def latest_created(isvc: Manifest | None) -> str:
    """The latest Knative revision KServe created ('' in Standard mode)."""
    return str(predictor_status(isvc).get("latestCreatedRevision") or "")


def implementation_field(isvc: Manifest) -> str | None:
    """Which predictor field holds the model (``model``, or a legacy ``<framework>``): the
    mapping with the storageUri, in either spec style."""
    predictor = predictor_spec(isvc)
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
    return engine, protocol, storage_uri(isvc)


def prediction_url(base_url: str, engine: Engine, app_name: str, protocol: str = "") -> str:
    """status.url + the protocol's path for the runtime's model name (DESIGN.md §3); for gRPC
    the host and port to dial (the model name goes in each request)."""
    protocol = protocol or engine.protocol
    if protocol == "grpc-v2":
        return grpc_target(base_url)
    return base_url.rstrip("/") + engine.prediction_path(app_name, protocol)


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
    value = predictor_spec(isvc).get(CANARY)
    return None if value is None else int(value)


def previous_model(isvc: dict[str, Any]) -> str:
    return str(((isvc.get("metadata") or {}).get("annotations") or {}).get(PREVIOUS) or "")


def on_revision(isvc: dict[str, Any], revision: str) -> int:
    """Percent of the traffic the status routes to ``revision``."""
    traffic = predictor_status(isvc).get("traffic") or []
    return sum(int(t.get("percent") or 0) for t in traffic if t.get("revisionName") == revision)


def split(isvc: dict[str, Any]) -> dict[str, Any] | None:
    """The traffic split the status reports, each revision with its model; None when the
    service has no Knative revisions (Standard mode, or not reconciled yet)."""
    component = predictor_status(isvc)
    created = latest_created(isvc)
    if not created:
        return None
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
    created = latest_created(isvc)
    return (
        predictor_status(isvc).get("latestReadyRevision") == created
        and on_revision(isvc, created) == 100
    )


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


def reachable_base(isvc: Manifest, in_pod: bool = False) -> str:
    """The address to send requests to: status.url, or in a pod the cluster-local address
    (status.address.url) when KServe wrote one ("" before KServe has written a URL)."""
    status = isvc.get("status") or {}
    internal = str((status.get("address") or {}).get("url") or "")
    return internal if in_pod and internal else str(status.get("url") or "")


def served_prediction_url(isvc: Manifest, in_pod: bool = False) -> str:
    """The prediction URL a stored InferenceService answers at: ``reachable_base`` and the
    path of its engine in the protocol its spec names ("" without a URL or a known engine)."""
    engine, protocol, _ = engine_of(isvc)
    base = reachable_base(isvc, in_pod)
    return (
        prediction_url(base, engine, isvc["metadata"]["name"], protocol) if base and engine else ""
    )
