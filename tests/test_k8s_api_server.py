"""The Kubernetes API test server, driven only through the official ``kubernetes`` client."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import config, watch
from kubernetes.client import (
    ApiClient,
    ApisApi,
    CoreV1Api,
    CustomObjectsApi,
)
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError
from servers import k8s_api
from servers.k8s_api import CRD_PATH, KubeApiServer, crd_available, validate_against_crd

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
APPLY = "application/apply-patch+yaml"

needs_crd = pytest.mark.skipif(
    not crd_available(),
    reason=f"KServe CRD not found at {CRD_PATH}; the server skips schema validation without it",
)


# ---- fixtures and helpers


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer() as srv:
        yield srv


@pytest.fixture
def api(server: KubeApiServer) -> Iterator[ApiClient]:
    with ApiClient(server.client_configuration()) as api_client:
        yield api_client


@pytest.fixture
def core(api: ApiClient) -> CoreV1Api:
    return CoreV1Api(api)


@pytest.fixture
def custom(api: ApiClient) -> CustomObjectsApi:
    return CustomObjectsApi(api)


def isvc(name: str = "model", **predictor: Any) -> dict[str, Any]:
    predictor = predictor or {
        "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/iris/"}
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": predictor},
    }


def create_isvc(custom: CustomObjectsApi, body: dict[str, Any], ns: str = "default") -> dict:
    return custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)


def get_isvc(custom: CustomObjectsApi, name: str = "model") -> dict[str, Any]:
    return custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)


def patch_isvc(custom: CustomObjectsApi, patch: Any, name: str = "model", **kwargs: Any) -> dict:
    return custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, patch, **kwargs
    )


def apply_isvc(custom: CustomObjectsApi, body: dict, manager: str, **kwargs: Any) -> dict:
    return patch_isvc(
        custom,
        body,
        name=body["metadata"]["name"],
        field_manager=manager,
        _content_type=APPLY,
        **kwargs,
    )


def failure(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and Status body of a call that must fail."""
    with pytest.raises(ApiException) as info:
        call()
    return info.value.status, json.loads(info.value.body)


def rv(obj: dict[str, Any]) -> str:
    return obj["metadata"]["resourceVersion"]


def watch_isvcs(custom: CustomObjectsApi, **kwargs: Any) -> list[dict[str, Any]]:
    """Events of a bounded watch on the default namespace's InferenceServices."""
    kwargs.setdefault("timeout_seconds", 1)
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, **kwargs
    )
    return list(stream)


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# ---- Secrets (core v1)


def test_secret_create_get_list_and_delete(server: KubeApiServer, core: CoreV1Api) -> None:
    created = core.create_namespaced_secret(
        "default",
        {
            "metadata": {"name": "s3-creds", "labels": {"app": "iris"}},
            "stringData": {"AWS_ACCESS_KEY_ID": "AKIA1"},
        },
    )
    core.create_namespaced_secret("default", {"metadata": {"name": "other"}})

    assert created.data == {"AWS_ACCESS_KEY_ID": base64.b64encode(b"AKIA1").decode()}
    assert created.string_data is None  # write-only, folded into data
    assert created.type == "Opaque"
    assert created.metadata.uid and created.metadata.creation_timestamp
    fetched = core.read_namespaced_secret("s3-creds", "default")
    assert fetched.metadata.resource_version == created.metadata.resource_version
    listed = core.list_namespaced_secret("default", label_selector="app=iris")
    assert [s.metadata.name for s in listed.items] == ["s3-creds"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

    status = core.delete_namespaced_secret("s3-creds", "default")
    assert status.status == "Success"
    code, body = failure(lambda: core.read_namespaced_secret("s3-creds", "default"))
    assert code == 404
    assert body["message"] == 'secrets "s3-creds" not found'
    assert server.get_object("secrets", "default", "s3-creds") is None


def test_secret_replace_conflicts_when_stale_and_patch_merges(core: CoreV1Api) -> None:
    created = core.create_namespaced_secret(
        "default", {"metadata": {"name": "creds"}, "stringData": {"K": "one"}}
    )
    body = {"metadata": {"name": "creds", "resourceVersion": created.metadata.resource_version}}
    replaced = core.replace_namespaced_secret(
        "creds", "default", {**body, "stringData": {"K": "2"}}
    )
    assert replaced.data == {"K": base64.b64encode(b"2").decode()}

    code, status = failure(lambda: core.replace_namespaced_secret("creds", "default", body))
    assert (code, status["reason"]) == (409, "Conflict")

    # A dict body goes out as strategic merge patch, which core types accept.
    patched = core.patch_namespaced_secret("creds", "default", {"metadata": {"labels": {"a": "b"}}})
    assert patched.metadata.labels == {"a": "b"}
    assert patched.data == replaced.data
    assert int(patched.metadata.resource_version) > int(replaced.metadata.resource_version)


def test_secret_apply_drops_what_the_manager_stopped_sending(
    server: KubeApiServer, core: CoreV1Api
) -> None:
    def apply(labels: dict[str, str]) -> Any:
        metadata = {"name": "creds", "labels": labels}
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata}
        return core.patch_namespaced_secret(
            "creds", "default", body, field_manager="deployer", _content_type=APPLY
        )

    apply({"keep": "1", "drop": "1"})
    core.patch_namespaced_secret("creds", "default", {"metadata": {"labels": {"theirs": "x"}}})
    result = apply({"keep": "1"})

    assert result.metadata.labels == {"keep": "1", "theirs": "x"}
    managers = {(f.manager, f.operation) for f in result.metadata.managed_fields}
    assert managers == {("deployer", "Apply"), ("OpenAPI-Generator", "Update")}
    assert server.write_count("secrets", "default", "creds") == 3


def test_apply_requires_a_field_manager(core: CoreV1Api) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}}
    code, status = failure(
        lambda: core.patch_namespaced_secret("creds", "default", body, _content_type=APPLY)
    )
    assert (code, status["reason"]) == (422, "Invalid")
    assert "fieldManager" in status["message"]


def test_writes_into_a_missing_namespace_are_404(server: KubeApiServer, core: CoreV1Api) -> None:
    secret = {"metadata": {"name": "creds"}}
    code, status = failure(lambda: core.create_namespaced_secret("models", secret))
    assert code == 404
    assert status["details"] == {"name": "models", "kind": "namespaces"}
    assert status["message"] == 'namespaces "models" not found'

    core.create_namespace({"metadata": {"name": "models"}})
    assert core.create_namespaced_secret("models", secret).metadata.namespace == "models"
    namespace = server.get_object("namespaces", None, "models")
    assert namespace is not None
    assert namespace["status"] == {"phase": "Active"}


def test_list_pages_with_limit_and_continue(core: CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        core.create_namespaced_secret("default", {"metadata": {"name": name}})
    first = core.list_namespaced_secret("default", limit=2)
    rest = core.list_namespaced_secret("default", limit=2, _continue=first.metadata._continue)

    assert [s.metadata.name for s in first.items] == ["a", "b"]
    assert first.metadata.remaining_item_count == 1
    assert [s.metadata.name for s in rest.items] == ["c"]
    assert rest.metadata._continue is None


def test_pods_list_by_label_selector(server: KubeApiServer, core: CoreV1Api) -> None:
    for name, component in (("a", "predictor"), ("b", "transformer"), ("c", None)):
        labels = {"component": component} if component else {}
        server.put_object(
            "pods", {"metadata": {"name": name, "namespace": "default", "labels": labels}}
        )

    def names(selector: str) -> list[str]:
        pods = core.list_namespaced_pod("default", label_selector=selector)
        return [p.metadata.name for p in pods.items]

    assert names("component=predictor") == ["a"]
    assert names("component!=predictor") == ["b", "c"]
    assert names("component in (predictor,transformer)") == ["a", "b"]
    assert names("!component") == ["c"]
    assert names("") == ["a", "b", "c"]


# ---- InferenceServices (custom resources)


def test_isvc_create_get_list_replace_patch_delete(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    created = create_isvc(custom, isvc())
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["namespace"] == "default"
    assert get_isvc(custom) == created
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["model"]
    assert listed["kind"] == "InferenceServiceList"

    created["spec"]["predictor"]["minReplicas"] = 1
    replaced = custom.replace_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "model", created
    )
    assert replaced["spec"]["predictor"]["minReplicas"] == 1
    patched = patch_isvc(custom, {"spec": {"predictor": {"minReplicas": None, "maxReplicas": 3}}})
    assert "minReplicas" not in patched["spec"]["predictor"]
    assert patched["spec"]["predictor"]["maxReplicas"] == 3
    assert patched["metadata"]["generation"] == 3

    deleted = custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "model")
    assert deleted["metadata"]["name"] == "model"
    assert failure(lambda: get_isvc(custom))[0] == 404
    assert server.write_count(PLURAL, "default", "model") == 4


def test_duplicate_create_is_409_already_exists(custom: CustomObjectsApi) -> None:
    create_isvc(custom, isvc())
    code, status = failure(lambda: create_isvc(custom, isvc()))
    assert (code, status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == 'inferenceservices.serving.kserve.io "model" already exists'


def test_get_missing_is_404_with_a_status_body(custom: CustomObjectsApi) -> None:
    code, status = failure(lambda: get_isvc(custom, "absent"))
    assert code == 404
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'inferenceservices.serving.kserve.io "absent" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "absent", "kind": "inferenceservices", "group": GROUP},
    }


def test_replace_needs_a_current_resource_version(custom: CustomObjectsApi) -> None:
    created = create_isvc(custom, isvc())
    without = isvc()

    def replace(body: dict[str, Any]) -> Any:
        return custom.replace_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "model", body
        )

    code, status = failure(lambda: replace(without))
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "metadata.resourceVersion"

    patch_isvc(custom, {"metadata": {"labels": {"touched": "yes"}}})
    code, status = failure(lambda: replace(created))  # created carries the old version
    assert (code, status["reason"]) == (409, "Conflict")
    assert "the object has been modified" in status["message"]


def test_generation_moves_only_when_spec_changes(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    created = create_isvc(custom, isvc())
    labelled = patch_isvc(custom, {"metadata": {"labels": {"team": "ml"}}})
    server.update_status(PLURAL, "default", "model", {"observedGeneration": 1})
    respecced = patch_isvc(custom, {"spec": {"predictor": {"minReplicas": 2}}})

    assert created["metadata"]["generation"] == 1
    assert labelled["metadata"]["generation"] == 1
    assert rv(labelled) != rv(created)
    assert get_isvc(custom)["status"] == {"observedGeneration": 1}
    assert respecced["metadata"]["generation"] == 2


def test_a_write_that_changes_nothing_keeps_the_resource_version(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    create_isvc(custom, isvc())
    apply_isvc(custom, isvc(), "deployer")
    before = get_isvc(custom)
    writes = server.write_count(PLURAL, "default", "model")

    same_put = custom.replace_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "model", before
    )
    same_patch = patch_isvc(custom, {"spec": before["spec"]})
    same_apply = apply_isvc(custom, isvc(), "deployer")

    assert rv(same_put) == rv(same_patch) == rv(same_apply) == rv(before)
    assert server.write_count(PLURAL, "default", "model") == writes
    assert watch_isvcs(custom, resource_version=rv(before)) == []


def test_status_is_a_subresource(server: KubeApiServer, custom: CustomObjectsApi) -> None:
    body = isvc()
    body["status"] = {"url": "http://ignored"}
    created = create_isvc(custom, body)
    assert "status" not in created  # ignored on the main resource

    server.update_status(PLURAL, "default", "model", {"url": "http://model.default"})
    current = get_isvc(custom)
    current["status"] = {"url": "http://changed-through-main"}
    current["spec"]["predictor"]["minReplicas"] = 1
    replaced = custom.replace_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "model", current
    )
    assert replaced["status"] == {"url": "http://model.default"}

    through_status = custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "model",
        {"status": {"url": "http://new"}, "spec": {"predictor": {"minReplicas": 5}}},
    )
    assert through_status["status"] == {"url": "http://new"}
    assert through_status["spec"]["predictor"]["minReplicas"] == 1  # spec untouched
    assert through_status["metadata"]["generation"] == replaced["metadata"]["generation"]


def test_delete_waits_for_finalizers(custom: CustomObjectsApi) -> None:
    body = isvc()
    body["metadata"]["finalizers"] = ["inferenceservice.finalizers"]
    create_isvc(custom, body)

    marked = custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "model")
    assert marked["metadata"]["deletionTimestamp"]
    assert get_isvc(custom)["metadata"]["deletionTimestamp"]

    patch_isvc(custom, {"metadata": {"finalizers": None}})
    assert failure(lambda: get_isvc(custom))[0] == 404


def test_json_patch(custom: CustomObjectsApi) -> None:
    create_isvc(custom, isvc())
    operations = [
        {"op": "test", "path": "/spec/predictor/model/modelFormat/name", "value": "sklearn"},
        {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
        {"op": "replace", "path": "/spec/predictor/model/storageUri", "value": "s3://x/y/"},
    ]
    # CustomObjectsApi only knows merge patch: without _content_type a list goes out as one.
    assert failure(lambda: patch_isvc(custom, operations))[0] == 400
    json_patch = "application/json-patch+json"

    patched = patch_isvc(custom, operations, _content_type=json_patch)
    assert patched["metadata"]["labels"] == {"a": "b"}
    assert patched["spec"]["predictor"]["model"]["storageUri"] == "s3://x/y/"

    failed_test = [{"op": "test", "path": "/metadata/name", "value": "other"}]
    code, _ = failure(lambda: patch_isvc(custom, failed_test, _content_type=json_patch))
    assert code == 422


def test_strategic_merge_patch_is_refused_on_custom_resources(
    api: ApiClient, custom: CustomObjectsApi, tmp_path: Any
) -> None:
    create_isvc(custom, isvc())
    code, status = failure(
        lambda: patch_isvc(
            custom,
            {"metadata": {"labels": {"a": "b"}}},
            _content_type="application/strategic-merge-patch+json",
        )
    )
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")

    # The dynamic client's patch() defaults to strategic merge, so it fails the same way.
    dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    isvcs = dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="InferenceService")
    with pytest.raises(DynamicApiError) as info:
        isvcs.patch(body={"metadata": {"labels": {"a": "b"}}}, name="model", namespace="default")
    assert info.value.status == 415
    merged = isvcs.patch(
        body={"metadata": {"labels": {"a": "b"}}},
        name="model",
        namespace="default",
        content_type="application/merge-patch+json",
    )
    assert merged.to_dict()["metadata"]["labels"] == {"a": "b"}


def test_apply_removes_fields_the_manager_stopped_sending(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    first = isvc()
    first["metadata"]["labels"] = {"fuseml/app-name": "iris", "stale": "yes"}
    first["spec"]["predictor"]["minReplicas"] = 1
    # An apply that creates answers 201, which CustomObjectsApi's response map lacks: None.
    assert apply_isvc(custom, first, "kserve-predictor") is None
    assert get_isvc(custom)["spec"]["predictor"]["minReplicas"] == 1

    second = isvc()
    second["metadata"]["labels"] = {"fuseml/app-name": "iris"}
    updated = apply_isvc(custom, second, "kserve-predictor")

    assert updated["metadata"]["labels"] == {"fuseml/app-name": "iris"}
    assert "minReplicas" not in updated["spec"]["predictor"]
    assert updated["metadata"]["generation"] == 2
    (entry,) = updated["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("kserve-predictor", "Apply")
    assert "f:minReplicas" not in entry["fieldsV1"]["f:spec"]["f:predictor"]
    assert server.write_count(PLURAL, "default", "model") == 2


def test_apply_conflicts_with_another_manager_unless_forced(custom: CustomObjectsApi) -> None:
    body = isvc()
    body["spec"]["predictor"]["minReplicas"] = 1
    create_isvc(custom, body)  # owned by "OpenAPI-Generator", the client's User-Agent

    body["spec"]["predictor"]["minReplicas"] = 2
    code, status = failure(lambda: apply_isvc(custom, body, "kserve-predictor"))
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["details"]["causes"][0]["field"] == ".spec.predictor.minReplicas"
    assert 'conflict with "OpenAPI-Generator"' in status["message"]

    forced = apply_isvc(custom, body, "kserve-predictor", force=True)
    assert forced["spec"]["predictor"]["minReplicas"] == 2


# ---- KServe: CRD schema and webhooks


@needs_crd
def test_crd_schema_rejects_a_wrong_typed_field_with_422(custom: CustomObjectsApi) -> None:
    body = isvc()
    body["spec"]["predictor"]["minReplicas"] = "abc"
    code, status = failure(lambda: create_isvc(custom, body))

    assert (code, status["reason"]) == (422, "Invalid")
    (cause,) = status["details"]["causes"]
    assert cause["field"] == "spec.predictor.minReplicas"
    assert "must be of type integer" in cause["message"]
    assert status["message"].startswith('InferenceService.serving.kserve.io "model" is invalid')


# The serving options' fields: accepted as the CRD declares them, a wrong type or value is one
# 422 cause naming the field (the API server's own shape, before any webhook).
SERVING_FIELDS: dict[str, tuple[Any, Any]] = {
    "minReplicas": (0, "none"),
    "maxReplicas": (3, "many"),
    "scaleTarget": (50, "half"),
    "scaleMetric": ("rps", "gpu"),
    "canaryTrafficPercent": (10, "ten"),
    "timeout": (30, "soon"),
    "containerConcurrency": (4, "four"),
    "logger": ({"url": "http://dumper", "mode": "request"}, {"mode": "everything"}),
    "nodeSelector": ({"pool": "gpu"}, ["pool"]),
    "tolerations": ([{"key": "nvidia.com/gpu", "operator": "Exists"}], {"key": "x"}),
}


@needs_crd
@pytest.mark.parametrize("field", sorted(SERVING_FIELDS))
def test_serving_option_fields_against_the_crd(custom: CustomObjectsApi, field: str) -> None:
    good, bad = SERVING_FIELDS[field]
    body = isvc(f"ok-{field.lower()}")
    body["spec"]["predictor"][field] = good
    stored = create_isvc(custom, body)
    assert stored["spec"]["predictor"][field] == good  # kept, not pruned
    body = isvc(f"bad-{field.lower()}")
    body["spec"]["predictor"][field] = bad
    code, status = failure(lambda: create_isvc(custom, body))
    assert (code, status["reason"]) == (422, "Invalid")
    (cause,) = status["details"]["causes"]
    assert cause["field"].startswith(f"spec.predictor.{field}")


@needs_crd
def test_missing_required_field_is_422(custom: CustomObjectsApi) -> None:
    body = isvc(model={"modelFormat": {"version": "1"}, "storageUri": "s3://models/iris/"})
    code, status = failure(lambda: create_isvc(custom, body))
    assert code == 422
    fields = [c["field"] for c in status["details"]["causes"]]
    assert fields == ["spec.predictor.model.modelFormat.name"]


@needs_crd
def test_unknown_fields_are_pruned_with_a_warning_or_refused_when_strict(
    custom: CustomObjectsApi,
) -> None:
    body = isvc()
    body["spec"]["predictor"]["model"]["storageUrl"] = "s3://typo/"
    stored, code, headers = custom.create_namespaced_custom_object_with_http_info(
        GROUP, VERSION, "default", PLURAL, body
    )
    assert code == 201
    assert "storageUrl" not in stored["spec"]["predictor"]["model"]
    assert headers["Warning"] == '299 - "unknown field \\"spec.predictor.model.storageUrl\\""'

    body["metadata"]["name"] = "strict"
    code, status = failure(
        lambda: custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, body, field_validation="Strict"
        )
    )
    assert (code, status["reason"]) == (400, "BadRequest")
    assert 'unknown field "spec.predictor.model.storageUrl"' in status["message"]


@needs_crd
def test_validation_is_fast_enough() -> None:
    body = isvc()
    body["metadata"]["namespace"] = "default"
    validate_against_crd(body)  # loads and compiles the CRD once
    started = time.perf_counter()
    for _ in range(20):
        assert validate_against_crd(body) == []
    assert (time.perf_counter() - started) / 20 < 0.05


def test_without_the_crd_file_schema_checks_are_off_but_webhooks_stay(
    custom: CustomObjectsApi, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(k8s_api.schema, "CRD_DIR", tmp_path)  # no CRD files there
    body = isvc()
    body["spec"]["predictor"]["minReplicas"] = "abc"
    body["spec"]["predictor"]["model"]["storageUrl"] = "s3://typo/"

    stored = create_isvc(custom, body)
    assert stored["spec"]["predictor"]["minReplicas"] == "abc"
    assert stored["spec"]["predictor"]["model"]["storageUrl"] == "s3://typo/"
    assert failure(lambda: create_isvc(custom, isvc("1-model")))[0] == 403


def test_isvc_name_rules(custom: CustomObjectsApi) -> None:
    code, status = failure(lambda: create_isvc(custom, isvc("1-model")))
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"].startswith(
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: '
        'The InferenceService "1-model" is invalid'
    )
    # Names that are not even DNS subdomains fail the API server's own validation first.
    code, status = failure(lambda: create_isvc(custom, isvc("Model_1")))
    assert (code, status["details"]["causes"][0]["field"]) == (422, "metadata.name")


def test_exactly_one_predictor_implementation(custom: CustomObjectsApi) -> None:
    both = isvc(
        sklearn={"storageUri": "s3://a/"},
        model={"modelFormat": {"name": "sklearn"}, "storageUri": "s3://a/"},
    )
    code, status = failure(lambda: create_isvc(custom, both))
    assert code == 403
    assert "Exactly one of [SKLearn, XGBoost" in status["message"]
    assert status["message"].endswith("must be specified in PredictorSpec")

    none = isvc(minReplicas=1)
    assert failure(lambda: create_isvc(custom, none))[0] == 403


def test_legacy_framework_field_is_stored_as_model(custom: CustomObjectsApi) -> None:
    legacy = isvc(
        sklearn={
            "storageUri": "s3://models/iris/",
            "runtimeVersion": "v0.14.0",
            "protocolVersion": "v2",
            "resources": {"limits": {"cpu": "1"}},
        }
    )
    created = create_isvc(custom, legacy)
    predictor = get_isvc(custom)["spec"]["predictor"]

    assert "sklearn" not in predictor
    assert predictor["model"] == {
        "modelFormat": {"name": "sklearn"},
        "storageUri": "s3://models/iris/",
        "runtimeVersion": "v0.14.0",
        "protocolVersion": "v2",
        "resources": {"limits": {"cpu": "1"}},
    }
    assert created["spec"]["predictor"] == predictor


def test_reapplying_a_legacy_spec_changes_nothing(custom: CustomObjectsApi) -> None:
    legacy = isvc(sklearn={"storageUri": "s3://models/iris/"})
    apply_isvc(custom, legacy, "deployer")
    first = get_isvc(custom)
    again = apply_isvc(custom, legacy, "deployer")
    assert rv(again) == rv(first)
    assert again["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}


# ---- watch


def test_watch_sends_current_objects_then_modified_after_update_status(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    create_isvc(custom, isvc())
    events: list[dict[str, Any]] = []
    stream = watch.Watch()

    def consume() -> None:
        for event in stream.stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "default",
            PLURAL,
            field_selector="metadata.name=model",
            timeout_seconds=10,
        ):
            events.append(event)
            if event["type"] == "MODIFIED":
                stream.stop()

    consumer = in_thread(consume)
    assert server.wait_for_watches(1)
    ready = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    server.update_status(PLURAL, "default", "model", ready)
    consumer.join(10)

    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]
    assert events[1]["object"]["status"] == ready
    assert int(rv(events[1]["object"])) > int(rv(events[0]["object"]))


def test_watch_resumes_from_a_resource_version(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    created = create_isvc(custom, isvc())
    patch_isvc(custom, {"metadata": {"labels": {"v": "2"}}})
    create_isvc(custom, isvc("other"))
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "model")

    replayed = watch_isvcs(custom, resource_version=rv(created))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in replayed] == [
        ("MODIFIED", "model"),
        ("ADDED", "other"),
        ("DELETED", "model"),
    ]
    selected = watch_isvcs(custom, resource_version=rv(created), label_selector="v=2")
    assert [e["type"] for e in selected] == ["ADDED", "DELETED"]  # entered, then left


def test_watch_from_a_compacted_resource_version_is_410() -> None:
    with (
        KubeApiServer(history_size=2) as server,
        ApiClient(server.client_configuration()) as api,
    ):
        custom = CustomObjectsApi(api)
        created = create_isvc(custom, isvc())
        for replicas in (1, 2, 3):
            patch_isvc(custom, {"spec": {"predictor": {"minReplicas": replicas}}})

        with pytest.raises(ApiException) as info:
            watch_isvcs(custom, resource_version=rv(created))
        assert info.value.status == 410
        assert "too old resource version" in info.value.reason


def test_dropped_watch_reconnects_from_its_last_resource_version(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    create_isvc(custom, isvc())
    events: list[dict[str, Any]] = []
    stream = watch.Watch()

    def consume() -> None:
        for event in stream.stream(
            custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL
        ):
            events.append(event)
            if event["type"] == "MODIFIED":
                stream.stop()

    consumer = in_thread(consume)
    assert server.wait_for_watches(1)
    assert server.drop_watches() == 1
    assert server.wait_for_watches(1)  # the client came back by itself
    server.update_status(PLURAL, "default", "model", {"observedGeneration": 1})
    consumer.join(10)

    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]  # nothing replayed twice
    watches = [r for r in server.requests if r.query.get("watch") == "True"]
    assert len(watches) == 2
    assert watches[1].query["resourceVersion"] == rv(events[0]["object"])


def test_abruptly_dropped_watch_raises_in_the_client(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            watch_isvcs(custom, timeout_seconds=10)
        except Exception as err:
            errors.append(err)

    consumer = in_thread(consume)
    assert server.wait_for_watches(1)
    server.drop_watches(abrupt=True)
    consumer.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], urllib3.exceptions.ProtocolError)


# ---- discovery


def test_discovery_lists_kserve_versions(api: ApiClient, custom: CustomObjectsApi) -> None:
    groups = {g.name: g for g in ApisApi(api).get_api_versions().groups}
    kserve = groups[GROUP]
    assert [v.version for v in kserve.versions] == ["v1beta1", "v1alpha1"]
    assert kserve.preferred_version.version == "v1beta1"

    v1beta1 = {r.name: r for r in custom.get_api_resources(GROUP, "v1beta1").resources}
    assert set(v1beta1) == {"inferenceservices", "inferenceservices/status"}
    assert v1beta1["inferenceservices"].short_names == ["isvc"]
    v1alpha1 = {r.name for r in custom.get_api_resources(GROUP, "v1alpha1").resources}
    assert v1alpha1 == {"servingruntimes", "clusterservingruntimes"}
    core_names = {r.name for r in CoreV1Api(api).get_api_resources().resources}
    assert {"secrets", "serviceaccounts", "pods", "namespaces"} <= core_names


def test_discovery_without_the_serving_runtime_api(tmp_path: Any) -> None:
    with (
        KubeApiServer(serving_runtime_api=False) as server,
        ApiClient(server.client_configuration()) as api,
    ):
        groups = {g.name: g for g in ApisApi(api).get_api_versions().groups}
        assert [v.version for v in groups[GROUP].versions] == ["v1beta1"]
        code, _ = failure(lambda: CustomObjectsApi(api).get_api_resources(GROUP, "v1alpha1"))
        assert code == 404

        dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
        found = dynamic.resources.search(group=GROUP, kind="ServingRuntime")
        assert found == []
        assert dynamic.resources.get(api_version=f"{GROUP}/v1beta1", kind="InferenceService")


def test_serving_runtimes_can_be_seeded_and_listed(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    runtime = {
        "metadata": {"name": "kserve-sklearnserver"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "version": "1", "autoSelect": True}],
            "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.14"}],
        },
    }
    server.put_object("clusterservingruntimes", runtime)
    listed = custom.list_cluster_custom_object(GROUP, "v1alpha1", "clusterservingruntimes")
    assert [r["metadata"]["name"] for r in listed["items"]] == ["kserve-sklearnserver"]
    assert listed["items"][0]["kind"] == "ClusterServingRuntime"


# ---- steering from tests


def test_fail_next_injects_errors_then_recovers(
    server: KubeApiServer, core: CoreV1Api, custom: CustomObjectsApi
) -> None:
    create_isvc(custom, isvc())
    server.fail_next("PATCH", "/inferenceservices/model", 500, times=2)
    labels = {"metadata": {"labels": {"a": "b"}}}
    for _ in range(2):
        code, status = failure(lambda: patch_isvc(custom, labels))
        assert (code, status["reason"]) == (500, "InternalError")
    assert patch_isvc(custom, labels)["metadata"]["labels"] == {"a": "b"}

    server.fail_next("POST", "/secrets", 409, message="injected conflict")
    code, status = failure(
        lambda: core.create_namespaced_secret("default", {"metadata": {"name": "s"}})
    )
    assert (code, status["reason"], status["message"]) == (409, "Conflict", "injected conflict")


def test_503_with_retry_after_is_retried_by_the_client_itself(
    server: KubeApiServer, core: CoreV1Api
) -> None:
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}})
    server.fail_next("GET", "/secrets/s", 503, retry_after=0)

    assert core.read_namespaced_secret("s", "default").metadata.name == "s"
    gets = [r.status for r in server.requests if r.method == "GET"]
    assert gets == [503, 200]  # urllib3 retried without the caller noticing


def test_forbidden_answers_like_rbac(server: KubeApiServer, custom: CustomObjectsApi) -> None:
    create_isvc(custom, isvc())
    server.forbidden.add(("get", PLURAL))

    code, status = failure(lambda: get_isvc(custom))
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == (
        'inferenceservices.serving.kserve.io "model" is forbidden: User '
        '"system:serviceaccount:default:default" cannot get resource "inferenceservices" '
        'in API group "serving.kserve.io" in the namespace "default"'
    )
    assert custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"]


def test_forbidden_can_be_scoped_like_a_role(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    """A namespaced grant without a cluster-wide one: the all-namespaces list is refused."""
    create_isvc(custom, isvc())
    server.forbidden.add(("list", PLURAL, ""))
    code, status = failure(lambda: custom.list_cluster_custom_object(GROUP, VERSION, PLURAL))
    assert code == 403 and status["message"].endswith(
        'cannot list resource "inferenceservices" in API group "serving.kserve.io" at the cluster scope'
    )
    assert custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"]
    server.forbidden = {("list", PLURAL, "default")}
    assert (
        failure(lambda: custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL))[0]
        == 403
    )
    assert custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]


def test_on_write_lets_a_controller_set_status(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    seen: list[tuple[str, str, str, bool]] = []

    def controller(plural: str, namespace: str, name: str, obj: dict[str, Any] | None) -> None:
        seen.append((plural, namespace, name, obj is not None))
        if plural == PLURAL and obj is not None and "status" not in obj:
            generation = obj["metadata"]["generation"]
            server.update_status(plural, namespace, name, {"observedGeneration": generation})

    server.on_write(controller)
    created = create_isvc(custom, isvc())
    assert server.wait_for_callbacks()

    assert get_isvc(custom)["status"] == {"observedGeneration": 1}
    assert int(rv(get_isvc(custom))) > int(rv(created))
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "model")
    assert server.wait_for_callbacks()
    assert seen == [
        (PLURAL, "default", "model", True),  # the create
        (PLURAL, "default", "model", True),  # the controller's own status write
        (PLURAL, "default", "model", False),  # the delete
    ]
    assert server.callback_errors == []
    assert server.write_count(PLURAL, "default", "model") == 2  # create + delete, not status


def test_kubeconfig_points_the_client_at_the_server(server: KubeApiServer, tmp_path: Any) -> None:
    path = server.write_kubeconfig(tmp_path / "kubeconfig", namespace="default")
    with config.new_client_from_config(config_file=str(path)) as api:
        assert api.configuration.host == server.url
        names = [n.metadata.name for n in CoreV1Api(api).list_namespace().items]
    assert names == ["default"]


def test_token_is_required_when_configured() -> None:
    with KubeApiServer(token="s3cret") as server:
        configuration = server.client_configuration()
        with ApiClient(configuration) as api:
            assert CoreV1Api(api).list_namespaced_secret("default").items == []
        configuration.api_key = {}
        with ApiClient(configuration) as api:
            assert failure(lambda: CoreV1Api(api).list_namespaced_secret("default"))[0] == 401


# ---- what the real API server was measured to do (issue 9)


def test_watch_bookmarks_carry_the_current_resource_version(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    created = create_isvc(custom, isvc())
    server.put_object("secrets", {"metadata": {"name": "other", "namespace": "default"}})
    # 2 s before the watch's timeout the watch cache sends a BOOKMARK with the newest version
    events = watch_isvcs(
        custom, resource_version=rv(created), allow_watch_bookmarks=True, timeout_seconds=3
    )
    assert [e["type"] for e in events] == ["BOOKMARK"]
    bookmark = events[0]["raw_object"]
    assert bookmark["kind"] == "InferenceService" and set(bookmark["metadata"]) == {
        "resourceVersion"
    }
    assert (
        int(bookmark["metadata"]["resourceVersion"]) == server.resource_version > int(rv(created))
    )
    # without asking for bookmarks there are none
    assert watch_isvcs(custom, resource_version=rv(created), timeout_seconds=1) == []


def test_dry_run_accepts_only_all(custom: CustomObjectsApi) -> None:
    code, status = failure(lambda: create_isvc_dry(custom, "Yes"))
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Yes"}: '
        'supported values: "All"'
    )
    assert create_isvc_dry(custom, "All")["metadata"]["name"] == "model"
    assert failure(lambda: get_isvc(custom))[0] == 404  # a dry run stores nothing


def create_isvc_dry(custom: CustomObjectsApi, dry_run: str) -> dict:
    return custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, isvc(), dry_run=dry_run
    )


@needs_crd
def test_apply_of_a_field_the_crd_does_not_declare_is_500(custom: CustomObjectsApi) -> None:
    body = isvc()
    body["spec"]["predictor"]["model"]["storageUrl"] = "s3://typo/"
    code, status = failure(lambda: apply_isvc(custom, body, "me"))
    assert code == 500
    assert status["message"] == (
        "failed to create typed patch object (serving.kserve.io/v1beta1, Kind=InferenceService): "
        ".spec.predictor.model.storageUrl: field not declared in schema"
    )
    assert failure(lambda: get_isvc(custom))[0] == 404


def test_an_apply_that_creates_is_authorized_as_create_too(server: KubeApiServer) -> None:
    server.forbidden.add(("create", "secrets"))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    with ApiClient(server.client_configuration()) as api_client:
        core = CoreV1Api(api_client)
        code, status = failure(
            lambda: core.patch_namespaced_secret(
                "s", "default", secret, field_manager="me", _content_type=APPLY
            )
        )
        assert code == 403 and "cannot create resource" in status["message"]
        server.forbidden.clear()
        core.patch_namespaced_secret(
            "s", "default", secret, field_manager="me", _content_type=APPLY
        )
        core.patch_namespaced_secret(
            "s", "default", secret, field_manager="me", _content_type=APPLY
        )
    accesses = [r.access for r in server.requests if r.path.endswith("/secrets/s")]
    assert accesses == [
        (("", "secrets", "patch"), ("", "secrets", "create")),  # refused
        (("", "secrets", "patch"), ("", "secrets", "create")),  # created
        (("", "secrets", "patch"),),  # updated
    ]


def test_a_role_grants_only_its_rules_in_its_namespace() -> None:
    role = k8s_api.Role.from_manifest(
        {
            "metadata": {"namespace": "team"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        }
    )
    with KubeApiServer(namespaces=("default", "team"), role=role) as server:
        server.put_object("secrets", {"metadata": {"name": "s", "namespace": "team"}})
        with ApiClient(server.client_configuration()) as api_client:
            core = CoreV1Api(api_client)
            assert core.read_namespaced_secret("s", "team").metadata.name == "s"
            code, status = failure(lambda: core.read_namespaced_secret("s", "nope"))
            assert code == 403 and status["message"] == (
                'secrets "s" is forbidden: User "system:serviceaccount:default:default" cannot '
                'get resource "secrets" in API group "" in the namespace "nope"'
            )
            assert failure(lambda: core.list_namespaced_secret("team"))[0] == 403
            assert failure(lambda: core.read_namespace("team"))[0] == 403  # cluster-scoped


def test_a_frozen_server_keeps_connections_open_and_answers_nothing(
    server: KubeApiServer, custom: CustomObjectsApi
) -> None:
    server.freeze()
    started = time.monotonic()
    configuration = server.client_configuration()
    configuration.retries = False  # urllib3 would otherwise retry the read 3 times
    with ApiClient(configuration) as api_client, pytest.raises(urllib3.exceptions.ReadTimeoutError):
        CustomObjectsApi(api_client).list_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, _request_timeout=(2, 1)
        )
    assert 0.9 < time.monotonic() - started < 3  # no error, no close: the client timed out
    server.thaw()
    assert custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"] == []
