"""Kubernetes API errors typed from the API's Status (errors.py): each class from a real Status
body of the test API server, with the exit code and message the CLI has always shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kserve_predictor.errors import (
    ClusterError,
    Conflict,
    FieldConflict,
    Forbidden,
    Invalid,
    KubernetesApiError,
    NotFound,
    Unavailable,
    UsageError,
    WriteConflict,
)
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.connection import connect
from kserve_predictor.settings.groups import ClusterSettings

NS = "default"


@pytest.fixture
def api() -> Iterator[Any]:
    from servers.k8s_api import KubeApiServer

    server = KubeApiServer(namespaces=(NS,))
    server.start()
    yield server
    server.stop()


def _cluster(api: Any, tmp_path: Path, retry_seconds: float = 2.0) -> Cluster:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
    return connect(ClusterSettings(str(kubeconfig), retry_seconds=retry_seconds))


def _secret(name: str = "creds", namespace: str = NS, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data or {"key": "value"},
    }


def _raised(action: Any) -> KubernetesApiError:
    with pytest.raises(KubernetesApiError) as caught:
        action()
    return caught.value


def test_a_missing_object_is_not_found(api: Any, tmp_path: Path) -> None:
    cluster = _cluster(api, tmp_path)
    error = _raised(lambda: cluster._on_object("DELETE", "delete", "InferenceService", NS, "gone"))
    assert type(error) is NotFound and isinstance(error, UsageError)
    assert (error.status, error.reason, error.exit_code) == (404, "NotFound", 2)
    assert str(error).startswith(f"cannot delete InferenceService {NS}/gone: ")
    # ... which delete and get catch by its type: gone already, nothing to read
    assert cluster.delete("InferenceService", NS, "gone") is False
    assert cluster.get("InferenceService", NS, "gone") is None


def test_a_missing_namespace_is_not_found(api: Any, tmp_path: Path) -> None:
    error = _raised(lambda: _cluster(api, tmp_path).apply(_secret(namespace="nowhere")))
    assert type(error) is NotFound and error.status == 404
    assert str(error).endswith("; create the namespace or choose another")


def test_rbac_refusal_is_forbidden(api: Any, tmp_path: Path) -> None:
    api.forbidden.add(("patch", "secrets"))
    error = _raised(lambda: _cluster(api, tmp_path).apply(_secret()))
    assert type(error) is Forbidden and isinstance(error, UsageError)
    assert (error.status, error.reason, error.exit_code) == (403, "Forbidden", 2)
    assert "permission denied" in str(error) and "deploy/rbac.yaml" in str(error)


def test_rejected_credentials_are_forbidden(api: Any, tmp_path: Path) -> None:
    api.token = "the-right-token"
    document = api.kubeconfig(NS)
    document["users"][0]["user"] = {"token": "a-wrong-token"}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    cluster = connect(ClusterSettings(str(path), retry_seconds=2))
    error = _raised(lambda: cluster.apply(_secret()))
    assert type(error) is Forbidden and (error.status, error.exit_code) == (401, 2)
    assert str(error).endswith(f"the Kubernetes API at {cluster.host} rejected the credentials")


def test_an_invalid_object_is_invalid(api: Any, tmp_path: Path) -> None:
    error = _raised(lambda: _cluster(api, tmp_path).apply(_secret(name="Not_A_Name")))
    assert type(error) is Invalid and isinstance(error, UsageError)
    assert (error.status, error.reason, error.exit_code) == (422, "Invalid", 2)
    assert "the API server rejected it: " in str(error)


def test_an_invalid_inference_service_is_invalid(api: Any, tmp_path: Path) -> None:
    from servers.k8s_api import crd_available

    if not crd_available():
        pytest.skip("the KServe CRDs are absent")
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": NS},
        "spec": {
            "predictor": {
                "minReplicas": "many",
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://b/m"},
            }
        },
    }
    # (the first custom resource loads the CRD files: more time than the 2 s budget)
    error = _raised(lambda: _cluster(api, tmp_path, 60.0).apply(isvc))
    assert type(error) is Invalid and (error.status, error.reason) == (422, "Invalid")
    assert "spec.predictor.minReplicas: Invalid value" in str(error)


def test_fields_of_another_manager_are_a_field_conflict(api: Any, tmp_path: Path) -> None:
    cluster = _cluster(api, tmp_path)
    secret = _secret(key="theirs")
    cluster._call(  # another client's server-side apply owns data.key
        "PATCH",
        f"/api/v1/namespaces/{NS}/secrets/creds",
        (5.0, 5.0),
        query_params=[("fieldManager", "someone-else")],
        headers={"Content-Type": "application/apply-patch+yaml"},
        body=secret,
    )
    error = _raised(lambda: cluster.apply(_secret(key="ours")))
    assert type(error) is FieldConflict and isinstance(error, (Conflict, UsageError))
    assert (error.status, error.reason, error.exit_code) == (409, "Conflict", 2)
    assert 'managed by "someone-else"' in str(error) and "pass --force" in str(error)


def test_any_other_conflict_is_a_write_conflict(api: Any, tmp_path: Path) -> None:
    api.fail_next("PATCH", "secrets", 409, reason="AlreadyExists", message="already exists")
    error = _raised(lambda: _cluster(api, tmp_path).apply(_secret()))
    assert type(error) is WriteConflict and isinstance(error, (Conflict, ClusterError))
    assert (error.status, error.reason, error.exit_code) == (409, "AlreadyExists", 1)
    assert str(error).endswith("Kubernetes API answered 409 already exists")


def test_server_failures_past_the_retries_are_unavailable(api: Any, tmp_path: Path) -> None:
    api.fail_next("GET", "secrets", 503, times=1000)
    error = _raised(lambda: _cluster(api, tmp_path, 1.0).get("Secret", NS, "creds"))
    assert type(error) is Unavailable and isinstance(error, ClusterError) and error.retryable
    assert (error.status, error.reason, error.exit_code) == (503, "ServiceUnavailable", 1)


def test_no_answer_at_all_is_unavailable(api: Any, tmp_path: Path) -> None:
    cluster = _cluster(api, tmp_path, 1.0)
    api.stop()
    error = _raised(lambda: cluster.get("Secret", NS, "creds"))
    assert type(error) is Unavailable and (error.status, error.exit_code) == (0, 1)
    assert "nothing answers at the Kubernetes API address" in str(error)
