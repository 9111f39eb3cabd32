"""deploy --dry-run=client: the manifests from the model's metadata alone, for GitOps.

The S3 server is real (moto); the Kubernetes API test server and the FuseML test server are
running and named in the environment, and their request logs show that the client dry run
never called them. --dry-run / --dry-run=server keep today's checks against the cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SECRET_KEY, Cluster, S3Server, run_cli

from kserve_predictor.errors import UsageError
from kserve_predictor.kserve.readiness import ROLLOUT_ID
from kserve_predictor.settings.groups import DeploySettings


def env_for(s3: S3Server, cluster: Cluster, **extra: str) -> dict[str, str]:
    return {**s3.env, "KUBECONFIG": str(cluster.kubeconfig), **extra}


def keys(s3: S3Server, bucket: str) -> list[tuple[str, str]]:
    contents = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted((o["Key"], o["ETag"]) for o in contents)


def client(url: str, *extra: str, env: dict[str, str]) -> Any:
    return run_cli(
        "deploy", "--model", url, "--app-name", "iris", "--dry-run=client", *extra, env=env
    )


def test_client_dry_run_asks_no_cluster_and_no_fuseml_and_writes_nothing(
    s3: S3Server,
    s3_model: Any,
    cluster: Cluster,
    fuseml: Any,
    bucket: str,
) -> None:
    url = s3_model("sklearn_pickle")
    before = keys(s3, bucket)
    env = env_for(s3, cluster, FUSEML_SERVER_URL=fuseml.url)
    args = ("-n", "models", "--workflow", "wf", "-o", "yaml", "--min-replicas", "2")
    done = client(url, *args, env=env)
    assert done.code == 0, done.stderr
    assert cluster.api.requests == []  # type: ignore[attr-defined]
    assert fuseml.requests_log == []
    assert keys(s3, bucket) == before  # no upload, no conversion copy, no record

    # -o yaml: a multi-document stream of exactly the three objects, nothing else on stdout
    docs = list(yaml.safe_load_all(done.stdout))
    assert [d["kind"] for d in docs] == ["Secret", "ServiceAccount", "InferenceService"]
    assert {d["metadata"]["namespace"] for d in docs} == {"models"}  # not in the cluster: unchecked
    secret, account, isvc = docs
    assert secret["stringData"] == {
        "AWS_ACCESS_KEY_ID": "<redacted>",
        "AWS_SECRET_ACCESS_KEY": "<redacted>",
    }
    assert SECRET_KEY not in done.stdout + done.stderr
    assert account["secrets"] == [{"name": "iris-kserve"}]
    predictor = isvc["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "iris-kserve"
    assert predictor["minReplicas"] == 2
    assert ROLLOUT_ID not in (predictor.get("annotations") or {})  # reproducible output
    model = predictor["model"]  # model style without a cluster to probe
    assert model["modelFormat"] == {"name": "sklearn"} and model["protocolVersion"] == "v1"
    # the storageUri names the layout's folder, computed from the listing: not written
    assert model["storageUri"].startswith(url + "/")
    assert not any(
        k.startswith(model["storageUri"].removeprefix(f"s3://{bucket}/")) for k, _ in before
    )
    assert isvc["metadata"]["labels"]["fuseml/workflow"] == "wf"
    # the plan and what was not checked, on stderr
    for item in ("namespace existence", "permissions", "CRD schema and admission webhooks",
                 "runtime selection against the cluster's runtimes", "spec style"):  # fmt: skip
        assert f"not checked: {item}" in done.stderr

    again = client(url, *args, env=env)  # GitOps: the same input renders the same bytes
    assert again.code == 0, again.stderr
    assert again.stdout == done.stdout
    assert cluster.api.requests == []  # type: ignore[attr-defined]


def test_client_dry_run_reads_no_kubeconfig(s3: S3Server, s3_model: Any, tmp_path: Path) -> None:
    url = s3_model("xgboost")
    env = {**s3.env, "KUBECONFIG": str(tmp_path / "missing" / "kubeconfig")}
    done = client(url, "-n", "models", env=env)
    assert done.code == 0, done.stderr
    assert "kind: InferenceService" in done.stdout
    assert "# nothing was written (dry run)" in done.stdout
    assert "# not checked: namespace existence" in done.stdout
    # the server dry run does need the cluster: the same command fails there
    server = run_cli(
        "deploy", "--model", url, "--app-name", "iris", "-n", "models", "--dry-run", env=env
    )
    assert server.code == 2
    assert "missing/kubeconfig" in server.stderr


def test_client_dry_run_needs_a_namespace(s3: S3Server, s3_model: Any, tmp_path: Path) -> None:
    url = s3_model("xgboost")
    env = {**s3.env, "KUBECONFIG": str(tmp_path / "missing")}
    done = client(url, env=env)
    assert done.code == 2
    assert "--dry-run=client needs --namespace" in done.stderr
    # the step's namespace variable is --namespace's default
    done = client(url, "-o", "json", env={**env, "FUSEML_ENV_WORKFLOW_NAMESPACE": "team-a"})
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["namespace"] == "team-a"


def test_client_and_server_dry_runs_render_the_same_objects(
    s3: S3Server, s3_model: Any, cluster: Cluster
) -> None:
    """What the client renders is what the server-checked dry run would apply, but for the
    rollout id (a deploy's own) and the verdict on the cluster's runtime images."""
    url = s3_model("onnx")
    env = env_for(s3, cluster)
    common = ("-n", "default", "--workflow", "wf", "-o", "json")
    rendered = json.loads(client(url, *common, env=env).stdout)
    runs = [
        run_cli("deploy", "--model", url, "--app-name", "iris", *common, *flag, env=env)
        for flag in (("--dry-run",), ("--dry-run=server",))
    ]
    assert [r.code for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    plain, server = (json.loads(r.stdout) for r in runs)
    assert server["dry_run"] is True and server["dry_run_mode"] == "server"
    assert server["not_checked"] == []
    assert rendered["dry_run"] is True and rendered["dry_run_mode"] == "client"
    assert "permissions" in rendered["not_checked"]

    def comparable(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = json.loads(json.dumps(manifests))
        isvc = out[-1]
        isvc["spec"]["predictor"].pop("annotations", None)  # the rollout id
        annotations = isvc["metadata"].get("annotations") or {}
        for key in [k for k in annotations if "compatibility" in k or "runtime-image" in k]:
            del annotations[key]  # the test cluster's runtime images are tagged "simulated"
        return out

    # plain --dry-run is the server dry run, as before (each stamps a new rollout id)
    assert {**plain, "manifests": None} == {**server, "manifests": None}
    assert comparable(plain["manifests"]) == comparable(server["manifests"])
    assert ROLLOUT_ID in server["manifests"][-1]["spec"]["predictor"]["annotations"]
    assert comparable(rendered["manifests"]) == comparable(server["manifests"])
    for key in ("engine", "protocol", "storage_uri", "spec_style", "namespace"):
        assert rendered[key] == server[key], key


def test_secrets_are_shown_only_when_asked(s3: S3Server, s3_model: Any, tmp_path: Path) -> None:
    url = s3_model("xgboost")
    shown_secret = "shown-on-request-0123456789"  # not the suite's SECRET_KEY, which never shows
    env = {
        **s3.env,
        "AWS_SECRET_ACCESS_KEY": shown_secret,
        "KUBECONFIG": str(tmp_path / "missing"),
    }
    for output in ("yaml", "json", "human"):
        hidden = client(url, "-n", "models", "-o", output, "-v", env=env)
        assert hidden.code == 0, hidden.stderr
        assert shown_secret not in hidden.stdout + hidden.stderr
        assert "<redacted>" in hidden.stdout

        shown = client(url, "-n", "models", "-o", output, "-v", "--show-secrets", env=env)
        assert shown.code == 0, shown.stderr
        assert shown_secret in shown.stdout
        assert shown_secret not in shown.stderr  # logs stay masked, verbose too
        assert "<redacted>" not in shown.stdout
    (secret, *_) = yaml.safe_load_all(
        client(url, "-n", "models", "-o", "yaml", "--show-secrets", env=env).stdout
    )
    assert secret["stringData"]["AWS_SECRET_ACCESS_KEY"] == shown_secret
    assert secret["stringData"]["AWS_ACCESS_KEY_ID"] == s3.env["AWS_ACCESS_KEY_ID"]

    deploy = run_cli(
        "deploy", "--model", url, "--app-name", "iris", "-n", "models", "--show-secrets", env=env
    )
    assert deploy.code == 2
    assert "--show-secrets applies to --dry-run" in deploy.stderr
    assert shown_secret not in deploy.stdout + deploy.stderr


def test_output_yaml_is_the_json_data_for_other_commands(s3: S3Server, s3_model: Any) -> None:
    url = s3_model("xgboost")
    as_json = run_cli("detect", url, "-o", "json", env=s3.env)
    as_yaml = run_cli("detect", url, "-o", "yaml", env=s3.env)
    assert as_json.code == as_yaml.code == 0, as_json.stderr + as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)


def test_dry_run_settings() -> None:
    assert DeploySettings("s3://b/m").dry_run_mode == ""
    assert DeploySettings("s3://b/m", dry_run=True).dry_run_mode == "server"
    assert DeploySettings("s3://b/m", dry_run="client").dry_run_mode == "client"
    with pytest.raises(UsageError, match="use client or server"):
        DeploySettings("s3://b/m", dry_run="local")
