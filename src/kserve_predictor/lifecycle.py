"""Looking at and removing what `deploy` made: the status and delete commands."""

from __future__ import annotations

from typing import Any

from .cluster import Cluster, describe_status
from .deploy import prediction_url
from .engines import ENGINES, Engine
from .manifests import credentials_name


def engine_of(isvc: dict[str, Any]) -> tuple[Engine | None, str, str]:
    """The engine, protocol and storageUri an InferenceService spec says, in either style."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    for key, value in predictor.items():
        if isinstance(value, dict) and "storageUri" in value:
            fmt = (value.get("modelFormat") or {}).get("name") if key == "model" else key
            engine = next(
                (e for e in ENGINES.values() if e.model_format == fmt or e.legacy_field == fmt),
                None,
            )
            protocol = str(value.get("protocolVersion") or (engine.protocol if engine else "v1"))
            return engine, protocol, str(value["storageUri"])
    return None, "", ""


def service_status(
    cluster: Cluster, namespace: str, name: str, fuseml_url: str | None
) -> dict[str, Any] | None:
    isvc = cluster.get("InferenceService", namespace, name)
    if isvc is None:
        return None
    engine, protocol, storage = engine_of(isvc)
    status = isvc.get("status") or {}
    generation = int(isvc.get("metadata", {}).get("generation") or 1)
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    ready = ready and int(status.get("observedGeneration") or 0) >= generation
    url = str(status.get("url") or "")
    fuseml = None
    if fuseml_url:
        from .fuseml import FuseMLClient

        app = FuseMLClient(fuseml_url).get(name)
        fuseml = app.get("url") if app else None
    return {
        "name": name,
        "namespace": namespace,
        "ready": ready,
        "problem": None if ready else describe_status(isvc, generation),
        "engine": engine.name if engine else None,
        "protocol": protocol,
        "storage_uri": storage,
        "url": url,
        "prediction_url": prediction_url(url, engine, name) if url and engine else "",
        "fuseml": fuseml,
    }


def delete_service(
    cluster: Cluster, namespace: str, name: str, fuseml_url: str | None
) -> list[str]:
    """Delete the InferenceService, its credentials and its FuseML record; gone is fine."""
    removed = []
    for kind, object_name in (
        ("InferenceService", name),
        ("ServiceAccount", credentials_name(name)),
        ("Secret", credentials_name(name)),
    ):
        if cluster.delete(kind, namespace, object_name):
            removed.append(f"{kind} {namespace}/{object_name}")
    if fuseml_url:
        from .fuseml import FuseMLClient

        if FuseMLClient(fuseml_url).delete(name):
            removed.append(f"FuseML application {name}")
    return removed
