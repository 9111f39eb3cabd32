"""The Kubernetes objects, as pure functions, checked against KServe's real CRD."""

from __future__ import annotations

import pytest

from kserve_predictor.engines import ENGINES
from kserve_predictor.errors import UsageError
from kserve_predictor.kserve import manifests
from kserve_predictor.naming import (
    Origin,
    check_app_name,
    check_host_names,
    label_value,
    sanitize,
)
from kserve_predictor.settings.groups import S3Settings


def _spec(engine: str = "sklearn", style: str = "model", **kw) -> manifests.ServiceSpec:  # type: ignore[no-untyped-def]
    return manifests.ServiceSpec(
        name="iris",
        namespace="ns",
        engine=ENGINES[engine],
        storage_uri="s3://b/m/kserve/x/",
        style=style,
        **kw,
    )


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("style", ["model", "legacy"])
def test_inference_service_validates_against_the_crd(engine: str, style: str) -> None:
    from servers.k8s_api import crd_available, validate_against_crd

    if not crd_available():
        pytest.skip("../shared/kserve/crd/serving.kserve.io_inferenceservices.yaml is absent")
    if style == "legacy" and not ENGINES[engine].legacy_field:
        with pytest.raises(UsageError, match="ServingRuntime API"):
            manifests.inference_service(_spec(engine, style))
        return
    isvc = manifests.inference_service(
        _spec(engine, style, runtime_version="2.14.1", limits={"cpu": "2", "nvidia.com/gpu": "1"})
    )
    assert validate_against_crd(isvc) == []
    predictor = isvc["spec"]["predictor"]
    body = predictor["model"] if style == "model" else predictor[ENGINES[engine].legacy_field]
    assert body["protocolVersion"] == ENGINES[engine].protocol
    assert body["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "2", "nvidia.com/gpu": "1"},
    }
    assert predictor["serviceAccountName"] == "iris-kserve"


def test_secret_annotations_follow_the_endpoint() -> None:
    plain = manifests.secret("iris", "ns", S3Settings("http://minio.local:9000", "AK", "SK"), {})
    notes = plain["metadata"]["annotations"]
    assert notes["serving.kserve.io/s3-endpoint"] == "minio.local:9000"
    assert (
        notes["serving.kserve.io/s3-usehttps"] == "0"
        and notes["serving.kserve.io/s3-verifyssl"] == "1"
    )
    secure = manifests.secret(
        "iris", "ns", S3Settings("https://s3.example", "AK", "SK", verify_tls=False), {}
    )
    assert secure["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "1"
    assert secure["metadata"]["annotations"]["serving.kserve.io/s3-verifyssl"] == "0"
    assert secure["stringData"] == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    shown = manifests.to_yaml([secure])
    assert "SK" not in shown.replace("SK:", "") and "<redacted>" in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, {"cpu": "1", "memory": "2Gi"}),
        ("{nvidia.com/gpu: 1}", {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}),
        ('{"cpu": "500m", "memory": "4Gi"}', {"cpu": "500m", "memory": "4Gi"}),
        ("memory: 1.5Gi", {"cpu": "1", "memory": "1.5Gi"}),
    ],
)
def test_limits_merge_over_defaults(text: str | None, expected: dict[str, str]) -> None:
    assert manifests.parse_limits(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{cpu: [", "not YAML"),
        ("[1, 2]", "not a mapping"),
        ("just-a-string", "not a mapping"),
        ("{cpu: -1}", "not a Kubernetes quantity"),
        ("{memory: 2Xi}", "not a Kubernetes quantity"),
        ("{memory: lots}", "not a Kubernetes quantity"),
        ("{cpu: true}", "not a Kubernetes quantity"),
        ("{cpu: null}", "not a Kubernetes quantity"),
    ],
)
def test_bad_limits_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        manifests.parse_limits(text)


def test_app_names() -> None:
    assert check_app_name("iris-1") == "iris-1"
    for bad in ("", "Iris", "1iris", "iris-", "a_b", "x" * 54):
        with pytest.raises(UsageError):
            check_app_name(bad)
    long = sanitize("My Project" * 10)
    assert len(long) <= 53 and check_app_name(long)
    assert sanitize("9lives") == "app-9lives"


def test_origin_defaults_and_labels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".fuseml").mkdir()
    (tmp_path / ".fuseml" / "_org").write_text("Proj\n")
    (tmp_path / ".fuseml" / "_project").write_text("codeset")
    origin = Origin.from_codeset_dir(tmp_path, "flow")
    assert origin.default_app_name() == ("proj-codeset-flow", True)
    labels = origin.labels("proj-codeset-flow")
    assert (
        labels["fuseml/app-guid"] == "Proj.codeset.flow"
        and labels["app.kubernetes.io/managed-by"] == "kserve-predictor"
    )
    name, stable = Origin(workflow="flow").default_app_name()
    assert name.startswith("flow-") and not stable
    assert label_value("a" * 70 + "!") == "a" * 63


def test_the_name_limit_depends_on_the_namespace() -> None:
    """KServe's Standard-mode host label is <name>-predictor-<namespace> (63 characters)."""
    assert check_host_names("x" * 45, "default") == "x" * 45  # 45 + 11 + 7 = 63
    with pytest.raises(UsageError) as refused:
        check_host_names("x" * 37, "fuseml-workloads")  # 37 + 11 + 16 = 64
    message = str(refused.value)
    assert "'fuseml-workloads'" in message and "x" * 37 + "-predictor-fuseml-workloads" in message
    assert "36 or fewer" in message and "\n" not in message
    origin = Origin("a-rather-long-workflow-name", "my-project", "my-codeset")
    for namespace in ("default", "fuseml-workloads", "n" * 40):
        name, stable = origin.default_app_name(namespace)
        assert stable and check_app_name(name)
        if len(namespace) < 40:
            assert check_host_names(name, namespace) == name
    assert origin.default_app_name("fuseml-workloads") == origin.default_app_name(
        "fuseml-workloads"
    )


@pytest.mark.parametrize(
    ("limits", "requests"),
    [
        ({"cpu": "1", "memory": "64Mi"}, {"cpu": "100m", "memory": "64Mi"}),
        ({"cpu": "50m", "memory": "2Gi"}, {"cpu": "50m", "memory": "128Mi"}),
        ({"cpu": "0.05", "memory": "100M"}, {"cpu": "0.05", "memory": "100M"}),
        ({"cpu": "2", "memory": "4Gi"}, {"cpu": "100m", "memory": "128Mi"}),
    ],
)
def test_requests_never_exceed_limits(limits: dict[str, str], requests: dict[str, str]) -> None:
    isvc = manifests.inference_service(_spec(limits=limits))
    assert isvc["spec"]["predictor"]["model"]["resources"] == {
        "requests": requests,
        "limits": limits,
    }
