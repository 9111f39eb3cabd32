"""KServe's runtime selection, against ServingRuntimes stored in the Kubernetes API test server
and read back by the product's own Cluster client (the rules of GetSupportingRuntimes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kserve_predictor.choice.runtime_selection import ServingRuntime, default_runtimes, select
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.connection import connect
from kserve_predictor.settings.groups import ClusterSettings

NS = "models"


def runtime(
    name: str,
    formats: list[dict[str, Any]],
    protocols: list[str] | None = ("v1", "v2"),  # type: ignore[assignment]
    namespace: str | None = None,
    created: str = "2026-01-01T00:00:00Z",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime" if namespace else "ClusterServingRuntime",
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {
            "supportedModelFormats": formats,
            "containers": [{"name": "kserve-container", "image": f"example/{name}:v1"}],
            **spec,
        },
    }
    if protocols is not None:
        body["spec"]["protocolVersions"] = list(protocols)
    if namespace:
        body["metadata"]["namespace"] = namespace
    return body


def sklearn(priority: int | None = None, auto: bool = True, version: str = "1") -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "sklearn", "version": version, "autoSelect": auto}
    if priority is not None:
        entry["priority"] = priority
    return entry


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Any, Cluster]]:
    from servers.k8s_api import KubeApiServer

    server = KubeApiServer(namespaces=(NS,))
    server.start()
    cluster = connect(ClusterSettings(str(server.write_kubeconfig(tmp_path / "kc", NS))))
    yield server, cluster
    server.stop()


def store(server: Any, *objects: dict[str, Any]) -> None:
    for obj in objects:
        plural = "servingruntimes" if obj["kind"] == "ServingRuntime" else "clusterservingruntimes"
        server.put_object(plural, obj)


def chosen(cluster: Cluster, protocol: str | None, **kwargs: Any) -> str | None:
    objects, unreadable = cluster.list_runtimes(NS)
    assert unreadable == []
    selection = select(
        [ServingRuntime.from_object(o) for o in objects], "sklearn", protocol, **kwargs
    )
    return selection.runtime.name if selection else None


def test_priority_protocol_disabled_and_auto_select(api: tuple[Any, Cluster]) -> None:
    server, cluster = api
    store(
        server,
        runtime("low", [sklearn(priority=1)]),
        runtime("high-v2-only", [sklearn(priority=5)], protocols=["v2"]),
        runtime("disabled", [sklearn(priority=10)], disabled=True),
        runtime("manual", [sklearn(priority=9, auto=False)]),
        runtime("multi-model", [sklearn(priority=8)], multiModel=True),
        runtime("unprioritized", [sklearn()]),
    )
    assert chosen(cluster, "v1") == "low"  # v2-only, disabled, non-autoSelect all skipped
    assert chosen(cluster, None) == "low"  # no protocol means v1
    assert chosen(cluster, "v2") == "high-v2-only"
    assert chosen(cluster, "grpc-v2") is None
    assert chosen(cluster, "v1", explicit="manual") == "manual"  # named: autoSelect not needed
    assert chosen(cluster, "v1", explicit="disabled") is None
    assert chosen(cluster, "v1", format_version="2") is None  # no runtime lists sklearn:2


def test_a_namespaced_runtime_beats_a_cluster_one_of_higher_priority(
    api: tuple[Any, Cluster],
) -> None:
    server, cluster = api
    store(
        server,
        runtime("cluster-best", [sklearn(priority=100)]),
        runtime("ns-plain", [sklearn()], namespace=NS),
        runtime("elsewhere", [sklearn(priority=50)], namespace="default"),
    )
    assert chosen(cluster, "v1") == "ns-plain"


def test_without_priorities_newest_then_name_wins(api: tuple[Any, Cluster]) -> None:
    server, cluster = api
    store(
        server,
        runtime("b-old", [sklearn()], created="2025-01-01T00:00:00Z"),
        runtime("c-new", [sklearn()], created="2026-06-01T00:00:00Z"),
        runtime("a-new", [sklearn()], created="2026-06-01T00:00:00Z"),
    )
    assert chosen(cluster, "v1") == "a-new"


def test_runtime_version_replaces_the_image_tag(api: tuple[Any, Cluster]) -> None:
    server, cluster = api
    store(server, runtime("only", [sklearn()]))
    objects, _ = cluster.list_runtimes(NS)
    selection = select([ServingRuntime.from_object(o) for o in objects], "sklearn", "v1", "v9")
    assert selection is not None and selection.image == "example/only:v9"


def test_listing_cluster_runtimes_without_permission_is_reported(
    api: tuple[Any, Cluster],
) -> None:
    server, cluster = api
    store(server, runtime("ns", [sklearn()], namespace=NS))
    server.forbidden.add(("list", "clusterservingruntimes"))
    objects, unreadable = cluster.list_runtimes(NS)
    assert unreadable == ["ClusterServingRuntime:403"] and [o["kind"] for o in objects] == [
        "ServingRuntime"
    ]


def test_the_release_defaults_match_kserve_design() -> None:
    runtimes = list(default_runtimes())
    cases = {
        ("sklearn", "v1"): "kserve-sklearnserver",
        ("sklearn", "v2"): "kserve-mlserver",
        ("mlflow", "v2"): "kserve-mlserver",
        ("tensorflow", "v1"): "kserve-tensorflow-serving",
        ("tensorflow", "v2"): "kserve-tritonserver",
        ("onnx", "v2"): "kserve-tritonserver",
        ("triton", "v2"): "kserve-tritonserver",
        ("xgboost", "v1"): "kserve-xgbserver",
        ("lightgbm", "v1"): "kserve-lgbserver",
    }
    for (fmt, protocol), name in cases.items():
        selection = select(runtimes, fmt, protocol)
        assert selection is not None and selection.runtime.name == name, (fmt, protocol)
    assert select(runtimes, "mlflow", "v1") is None  # mlflow needs v2
