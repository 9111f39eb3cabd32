"""`gc` and `delete --gc` against moto's S3 server and the Kubernetes API test server: only
layouts that no InferenceService can be reading, and that are old enough, are removed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cluster, S3Server, run_cli
from servers.k8s_api import KubeApiServer, crd_available
from servers.storage_initializer import download

from kserve_predictor.choice.detect import detect
from kserve_predictor.kserve.client import Cluster as KubeCluster
from kserve_predictor.layouts.convert import convert
from kserve_predictor.layouts.gc import collect, parse_duration
from kserve_predictor.model.urls import resolve
from kserve_predictor.settings.groups import S3Settings

NS = "fuseml-workloads"
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


def keys(s3: S3Server, url: str) -> dict[str, str]:
    """Key → ETag of everything below ``url`` (a raw prefix, as KServe reads it)."""
    bucket, _, prefix = url[len("s3://") :].partition("/")
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


def convert_as(url: str, name: str) -> str:
    location = resolve(url, S3Settings.from_env())
    d = detect(location)
    return convert(location, d.info, d.require_engine(), name).location


def isvc(namespace: str, name: str, storage_uri: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "onnx"},
                    "protocolVersion": "v2",
                    "storageUri": storage_uri,
                }
            }
        },
    }


@pytest.fixture
def api_server() -> Iterator[KubeApiServer]:
    if not crd_available():
        pytest.skip("../shared/kserve/crd/serving.kserve.io_inferenceservices.yaml is absent")
    with KubeApiServer(namespaces=("default", "team-a", "team-b")) as server:
        yield server


def test_gc_keeps_referenced_unknown_young_and_unverifiable_layouts(
    s3: S3Server, s3_model, bucket: str, api_server: KubeApiServer
) -> None:
    from kubernetes.client import ApiClient, CustomObjectsApi

    url = s3_model("onnx")
    alpha, beta, gamma = (convert_as(url, name) for name in ("alpha", "beta", "gamma"))
    model_key = url.split(bucket + "/", 1)[1]
    client = s3.client()
    # A layout of an older release (kserve/<engine>/ and its record) and a folder that is not ours.
    client.put_object(Bucket=bucket, Key=f"{model_key}/kserve/triton/m/1/model.onnx", Body=b"o")
    client.put_object(Bucket=bucket, Key=f"{model_key}/kserve/.triton.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key=f"{model_key}/kserve/notes/readme.txt", Body=b"n")
    custom = CustomObjectsApi(ApiClient(api_server.client_configuration()))
    custom.create_namespaced_custom_object(
        GROUP, VERSION, "team-a", PLURAL, isvc("team-a", "a", alpha)
    )
    # Without the trailing '/', KServe's prefix download still reads beta's folder.
    custom.create_namespaced_custom_object(
        GROUP, VERSION, "team-b", PLURAL, isvc("team-b", "b", beta.rstrip("/"))
    )
    cluster = KubeCluster(ApiClient(api_server.client_configuration()))
    location = resolve(url, S3Settings.from_env())
    before = keys(s3, f"{url}/kserve/")

    # Everything was just written: the default grace period keeps it all.
    young = collect(location, cluster, parse_duration("24h"))
    assert not young.removed and not any(u.remove for u in young.layouts)
    gamma_use = next(u for u in young.layouts if gamma.endswith(f"/{u.name}/"))
    assert gamma_use.reason.startswith("younger than the grace period")

    # The cluster-wide list is refused and one namespace cannot be read: nothing can be verified.
    api_server.forbidden = {("list", PLURAL, ""), ("list", PLURAL, "team-b")}
    unverifiable = collect(location, cluster, 0)
    assert unverifiable.unchecked == ["team-b"] and not unverifiable.removed
    assert all(not u.remove for u in unverifiable.layouts)
    api_server.forbidden = {("list", PLURAL, ""), ("list", "namespaces", "")}
    blind = collect(location, cluster, 0)
    assert blind.unchecked and not blind.removed
    api_server.forbidden = {("list", PLURAL, "")}  # namespace by namespace, all readable
    assert collect(location, cluster, 0, dry_run=True).unchecked == []
    assert keys(s3, f"{url}/kserve/") == before

    api_server.forbidden = set()
    planned = collect(location, cluster, 0, dry_run=True)
    assert {u.url for u in planned.layouts if u.remove} == {gamma, f"{url}/kserve/triton/"}
    assert not planned.removed and keys(s3, f"{url}/kserve/") == before
    done = collect(location, cluster, 0)
    assert sorted(done.removed) == sorted([gamma, f"{url}/kserve/triton/"])
    reasons = {u.url: u.reason for u in done.layouts}
    assert reasons[alpha] == "used by team-a/a" and reasons[beta] == "used by team-b/b"
    assert reasons[f"{url}/kserve/notes/"] == "not a kserve-predictor layout"
    after = keys(s3, f"{url}/kserve/")
    assert not keys(s3, gamma) and not keys(s3, gamma.rstrip("/") + ".json")
    assert not keys(s3, f"{url}/kserve/triton/") and not keys(s3, f"{url}/kserve/.triton.json")
    assert {k: v for k, v in before.items() if k in after} == after
    for used in (alpha, beta):  # still exactly what the services download
        assert keys(s3, used) == {
            k: v for k, v in before.items() if k.startswith(used[5:].split("/", 1)[1])
        }

    # A removed layout is simply rebuilt by the next conversion that needs it.
    assert convert_as(url, "gamma") == gamma and keys(s3, gamma)


def test_removal_starts_with_the_record(
    s3: S3Server, s3_model, bucket: str, api_server: KubeApiServer, tmp_path: Path
) -> None:
    """gc dying midway leaves a layout that no conversion takes for complete."""
    from kubernetes.client import ApiClient

    url = s3_model("sklearn_pickle")
    layout = convert_as(url, "iris")
    location = resolve(url, S3Settings.from_env())
    real_delete = location.store.delete
    calls: list[list[str]] = []

    def dying_delete(batch: list[str]) -> None:
        calls.append(batch)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_delete(batch)

    location.store.delete = dying_delete  # type: ignore[method-assign]
    cluster = KubeCluster(ApiClient(api_server.client_configuration()))
    with pytest.raises(KeyboardInterrupt):
        collect(location, cluster, 0)
    assert calls[0] == [layout[5:].split("/", 1)[1].rstrip("/") + ".json"]
    assert keys(s3, layout)  # the files are still there, the record is not
    again = resolve(url, S3Settings.from_env())
    d = detect(again)
    redone = convert(again, d.info, d.require_engine(), "iris")
    assert redone.location == layout and redone.skipped == ["model.pkl"] and not redone.copied
    assert download(s3.client(), layout, tmp_path / "m") == ["model.pkl"]


def test_delete_gc_ignores_the_service_it_deleted_while_finalizers_run(
    s3: S3Server, s3_model, api_server: KubeApiServer
) -> None:
    """KServe puts a finalizer on every InferenceService: a deleted one stays listed (with a
    deletionTimestamp) until the controller lets it go, and must not keep its layout alive."""
    from kubernetes.client import ApiClient, CustomObjectsApi

    from kserve_predictor.layouts.gc import collect_after_delete

    url = s3_model("onnx")
    mine, shared = convert_as(url, "mine"), convert_as(url, "shared")
    custom = CustomObjectsApi(ApiClient(api_server.client_configuration()))
    for namespace, name, uri in (("team-a", "mine", mine), ("team-b", "other", shared)):
        body = isvc(namespace, name, uri)
        body["metadata"]["finalizers"] = ["inferenceservice.finalizers"]
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    cluster = KubeCluster(ApiClient(api_server.client_configuration()))
    deleted = cluster.get("InferenceService", "team-a", "mine")
    assert deleted is not None and cluster.delete("InferenceService", "team-a", "mine")
    assert cluster.get("InferenceService", "team-a", "mine") is not None  # still finalizing

    result = collect_after_delete(cluster, deleted, S3Settings.from_env())
    assert result is not None and result.removed == [mine] and not keys(s3, mine)
    assert [u.name for u in result.layouts] == [mine.rstrip("/").rsplit("/", 1)[1]]
    # A service deleted elsewhere, on the shared layout: team-b/other still uses it.
    other = cluster.get("InferenceService", "team-b", "other")
    assert other is not None
    elsewhere = {**other, "metadata": {"namespace": "team-c", "name": "gone"}}
    kept = collect_after_delete(cluster, elsewhere, S3Settings.from_env())
    assert kept is not None and not kept.removed
    assert [u.reason for u in kept.layouts] == ["used by team-b/other"]
    assert keys(s3, shared)


def test_relogged_model_gets_a_new_layout_the_old_one_stays_until_gc(
    s3: S3Server, s3_model, bucket: str, cluster: Cluster
) -> None:
    url = s3_model("sklearn_pickle")
    env = {**s3.env, "KUBECONFIG": str(cluster.kubeconfig)}

    def deploy() -> str:
        done = run_cli(
            "deploy", "--model", url, "--app-name", "iris", "-n", NS, "--output", "json", env=env
        )
        assert done.code == 0, done.stderr
        return str(json.loads(done.stdout)["storage_uri"])

    first = deploy()
    served = keys(s3, first)
    model_key = url.split(bucket + "/", 1)[1] + "/model.pkl"
    body = s3.client().get_object(Bucket=bucket, Key=model_key)["Body"].read()
    s3.client().put_object(Bucket=bucket, Key=model_key, Body=body + b"\n")  # re-logged
    second = deploy()
    assert second != first and keys(s3, first) == served  # the old pods' files are untouched
    stored = cluster.api.get_object("inferenceservices", NS, "iris")  # type: ignore[attr-defined]
    assert stored["spec"]["predictor"]["model"]["storageUri"] == second

    dry = run_cli("gc", url, "--dry-run", "--grace-period", "0", "--output", "json", env=env)
    assert dry.code == 0, dry.stderr
    actions = {u["url"]: (u["action"], u["reason"]) for u in json.loads(dry.stdout)["layouts"]}
    assert actions == {first: ("remove", actions[first][1]), second: ("keep", f"used by {NS}/iris")}
    assert keys(s3, first) == served

    real = run_cli("gc", url, "--grace-period", "0", env=env)
    assert real.code == 0, real.stderr
    assert "removed 1 layout(s)" in real.stdout and f"used by {NS}/iris" in real.stdout
    assert not keys(s3, first) and keys(s3, second)

    gone = run_cli("delete", "iris", "-n", NS, "--gc", "--output", "json", env=env)
    assert gone.code == 0, gone.stderr
    assert second in json.loads(gone.stdout)["deleted"] and not keys(s3, second)


def test_an_interrupted_conversion_is_never_deployed(
    s3: S3Server, s3_model, cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The pod is killed mid-copy: no InferenceService points at the half-made folder; the
    re-run completes it, and the service downloads exactly the plan."""
    from kserve_predictor.kserve.connection import connect
    from kserve_predictor.ops.deploy import deploy
    from kserve_predictor.settings.groups import ClusterSettings, DeploySettings
    from kserve_predictor.store.s3 import S3Store

    url = s3_model("tf_module")
    settings = DeploySettings(
        model_url=url,
        app_name="tf",
        namespace=NS,
        s3=S3Settings.from_env(),
        cluster=ClusterSettings(kubeconfig=str(cluster.kubeconfig)),
        timeout=120,
        smoke_test=False,
    )
    real_copy = S3Store.copy
    copies = 0

    def dying_copy(self, source, dest_key):  # type: ignore[no-untyped-def]
        nonlocal copies
        copies += 1
        if copies == 2:
            raise KeyboardInterrupt
        real_copy(self, source, dest_key)

    monkeypatch.setattr(S3Store, "copy", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        deploy(settings, connect(ClusterSettings(str(cluster.kubeconfig))))
    assert cluster.api.get_object("inferenceservices", NS, "tf") is None  # type: ignore[attr-defined]
    monkeypatch.setattr(S3Store, "copy", real_copy)

    result = deploy(settings, connect(ClusterSettings(str(cluster.kubeconfig))))
    assert result.conversion is not None and result.conversion.skipped  # finished copies kept
    assert result.storage_uri == result.conversion.location
    d = detect(resolve(url, S3Settings.from_env()))
    plan_files = {
        f.removeprefix(d.info.savedmodel_dir or "").lstrip("/") for f in d.info.model_files()
    }
    downloaded = download(s3.client(), result.storage_uri, tmp_path / "tf")
    assert {f.removeprefix("1/") for f in downloaded} == plan_files


def test_gc_bad_input_is_one_line_exit_2(zoo: Path, s3: S3Server) -> None:
    for args, needle in (
        (["gc", str(zoo / "onnx")], "is not in S3"),
        (["gc", "s3://b/m", "--grace-period", "soon"], "is not a duration"),
    ):
        done = run_cli(*args, env=s3.env)
        assert done.code == 2 and needle in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
