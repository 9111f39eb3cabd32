"""deploy --dry-run, status, delete, ownership and bad input leaving nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import SECRET_KEY, Cluster, S3Server, free_port, run_cli

NS = "default"


def env_for(s3: S3Server, cluster: Cluster, **extra: str) -> dict[str, str]:
    return {**s3.env, "KUBECONFIG": str(cluster.kubeconfig), **extra}


def nothing_written(cluster: Cluster, s3: S3Server, bucket: str) -> None:
    api = cluster.api
    for plural in ("inferenceservices", "secrets", "serviceaccounts"):
        assert api.list_objects(plural, NS) == []  # type: ignore[attr-defined]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any("/kserve/" in k for k in keys)


def test_dry_run_prints_the_plan_and_writes_nothing(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str
) -> None:
    url = s3_model("onnx")
    done = run_cli(
        "deploy",
        "--model",
        url,
        "--app-name",
        "iris",
        "--dry-run",
        "-v",
        "--resources-limits",
        "{nvidia.com/gpu: 1}",
        env=env_for(s3, cluster),
    )
    assert done.code == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert [d["kind"] for d in docs] == ["Secret", "ServiceAccount", "InferenceService"]
    assert docs[0]["stringData"] == {
        "AWS_ACCESS_KEY_ID": "<redacted>",
        "AWS_SECRET_ACCESS_KEY": "<redacted>",
    }
    model = docs[2]["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "triton"} and model["protocolVersion"] == "v2"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "# nothing was written (dry run)" in done.stdout
    assert SECRET_KEY not in done.stdout + done.stderr
    nothing_written(cluster, s3, bucket)


def test_deploy_status_delete_round_trip(s3: S3Server, s3_model, cluster: Cluster, fuseml) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster, FUSEML_SERVER_URL=fuseml.url)
    done = run_cli(
        "deploy",
        "--model",
        s3_model("xgboost"),
        "--app-name",
        "boost",
        "--workflow",
        "wf",
        "--output",
        "json",
        env=env,
    )
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["prediction_url"].endswith("/v1/models/boost:predict")
    assert result["smoke_test_ms"] > 0  # the input example was answered
    assert result["registered"] is True and "boost" in fuseml.applications

    status = run_cli("status", "boost", "--output", "json", env=env)
    assert status.code == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["ready"] is True and data["engine"] == "xgboost"
    assert (
        data["prediction_url"] == result["prediction_url"]
        and data["fuseml"] == result["prediction_url"]
    )

    deleted = run_cli("delete", "boost", env=env)
    assert deleted.code == 0, deleted.stderr
    assert (
        "deleted InferenceService default/boost" in deleted.stdout
        and "FuseML application boost" in deleted.stdout
    )
    assert cluster.api.get_object("inferenceservices", NS, "boost") is None  # type: ignore[attr-defined]
    assert "boost" not in fuseml.applications
    again = run_cli("delete", "boost", env=env)
    assert again.code == 0 and "nothing named boost" in again.stdout
    missing = run_cli("status", "boost", env=env)
    assert missing.code == 2 and "no InferenceService default/boost" in missing.stderr


def test_someone_elses_service_is_not_taken_over(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str
) -> None:
    cluster.api.put_object(  # type: ignore[attr-defined]
        "inferenceservices",
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "taken", "namespace": NS, "labels": {"team": "search"}},
            "spec": {
                "predictor": {
                    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://other/model"}
                }
            },
        },
    )
    env = env_for(s3, cluster)
    url = s3_model("sklearn_pickle")
    refused = run_cli("deploy", "--model", url, "--app-name", "taken", env=env)
    assert (
        refused.code == 2
        and "already exists and belongs to another owner" in refused.stderr
        and "--force" in refused.stderr
    )
    stored = cluster.api.get_object("inferenceservices", NS, "taken")  # type: ignore[attr-defined]
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "s3://other/model"
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any("/kserve/" in k for k in keys)
    adopted = run_cli("deploy", "--model", url, "--app-name", "taken", "--force", env=env)
    assert adopted.code == 0, adopted.stderr
    stored = cluster.api.get_object("inferenceservices", NS, "taken")  # type: ignore[attr-defined]
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kserve-predictor"


def test_another_workflow_is_named_as_the_owner(s3: S3Server, s3_model, cluster: Cluster) -> None:
    env = env_for(s3, cluster)
    url = s3_model("sklearn_pickle")
    assert (
        run_cli(
            "deploy", "--model", url, "--app-name", "shared", "--workflow", "first", env=env
        ).code
        == 0
    )
    clash = run_cli(
        "deploy", "--model", url, "--app-name", "shared", "--workflow", "second", env=env
    )
    assert clash.code == 2 and "FuseML workflow 'first'" in clash.stderr


@pytest.mark.parametrize(
    ("args", "extra_env", "needle"),
    [
        (["--app-name", "Bad_Name"], {}, "not a valid InferenceService name"),
        (["--app-name", "x" * 50], {}, "45 or fewer"),
        (["--app-name", "y" * 40, "-n", "fuseml-workloads"], {}, "36 or fewer"),
        (["--resources-limits", "{cpu: lots}"], {}, "not a Kubernetes quantity"),
        (["--runtime-version", "a b"], {}, "cannot be an image tag"),
        (["--predictor", "tensorflow"], {}, "predictor 'tensorflow' cannot serve"),
        (["-n", "nowhere"], {}, "namespace 'nowhere' does not exist"),
        (["--workflow", "wf"], {"FUSEML_SERVER_URL": "http://127.0.0.1:{port}"}, "nothing answers"),
    ],
)
def test_bad_input_leaves_nothing_behind(
    s3: S3Server,
    s3_model,
    cluster: Cluster,
    bucket: str,
    args: list[str],
    extra_env: dict[str, str],
    needle: str,
) -> None:
    url = s3_model("sklearn_pickle")
    env = env_for(s3, cluster, **{k: v.format(port=free_port()) for k, v in extra_env.items()})
    if "--app-name" not in args:
        args = [*args, "--app-name", "iris"]
    done = run_cli("deploy", "--model", url, *args, env=env)
    assert done.code in (1, 2), done.stderr
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    nothing_written(cluster, s3, bucket)


def test_missing_permissions_are_found_before_any_write(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str
) -> None:
    cluster.api.forbidden.add(("patch", "inferenceservices"))  # type: ignore[attr-defined]
    done = run_cli(
        "deploy",
        "--model",
        s3_model("sklearn_pickle"),
        "--app-name",
        "iris",
        env=env_for(s3, cluster),
    )
    assert (
        done.code == 2 and "permission denied" in done.stderr and "deploy/rbac.yaml" in done.stderr
    )
    nothing_written(cluster, s3, bucket)


def test_local_model_cannot_go_to_kserve(zoo: Path, cluster: Cluster, s3: S3Server) -> None:
    done = run_cli(
        "deploy",
        "--model",
        str(zoo / "sklearn_pickle"),
        "--app-name",
        "iris",
        env=env_for(s3, cluster),
    )
    assert done.code == 2 and "not in S3" in done.stderr


def test_in_a_codeset_the_name_comes_from_it_without_a_namespace(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Inside a FuseML codeset, ``deploy`` without --app-name and without --namespace names the
    service after the codeset, as the step does, and deploys to the kubeconfig context's
    namespace (this crashed with an internal TypeError)."""
    from conftest import codeset

    url = s3_model("onnx")
    done = run_cli(
        "deploy", "--model", url, "--dry-run", "--output", "json",
        env=env_for(s3, cluster), cwd=codeset(tmp_path),
    )  # fmt: skip
    assert done.code == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["app_name"].startswith("mlflow-project-01-iris-codeset")
    assert plan["namespace"] == "default"  # the test kubeconfig's context
    nothing_written(cluster, s3, bucket)
