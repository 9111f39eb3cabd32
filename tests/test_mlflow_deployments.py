"""The MLflow deployments plugin through the real `mlflow deployments` CLI, against the
Kubernetes API test server with the KServe simulation, moto S3 and a SQLite tracking store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import OUTPUTS, SECRET_KEY, CliResult, Cluster, S3Server, free_port, run_cli

from kserve_predictor.errors import UsageError
from kserve_predictor.interfaces.mlflow import config as mlflow_config

MLFLOW = str(Path(sys.executable).parent / "mlflow")
NS = "fuseml-workloads"  # not the kubeconfig context's namespace (default)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def mlflow_cli(*args: str, env: dict[str, str]) -> CliResult:
    """`mlflow deployments ...` as a user runs it, in its own process."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("FUSEML_", "MLFLOW_", "AWS_"))}
    full.update({"AWS_EC2_METADATA_DISABLED": "true", **env})
    done = subprocess.run(
        [MLFLOW, "deployments", *args], env=full, capture_output=True, text=True, timeout=600
    )
    OUTPUTS.append(done.stdout + done.stderr)  # the session-wide secret check reads these
    return CliResult(done.returncode, done.stdout, done.stderr)


def env_for(s3: S3Server, cluster: Cluster, **extra: str) -> dict[str, str]:
    return {**s3.env, "KUBECONFIG": str(cluster.kubeconfig), **extra}


def one_line_error(done: CliResult) -> str:
    """The CLI's failure: a non-zero exit and one `Error:` line, no traceback."""
    assert done.code != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_a_session_create_get_list_predict_update_delete(
    s3: S3Server, cluster: Cluster, registry, tmp_path: Path, s3_model
) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster, MLFLOW_TRACKING_URI=os.environ["MLFLOW_TRACKING_URI"])
    target = ("-t", "kserve:/test")  # the kubeconfig's context, named
    created = mlflow_cli(
        "create", *target, "--name", "iris", "-m", "models:/iris@champion",
        "-C", f"namespace={NS}", "-C", "timeout=120", env=env,
    )  # fmt: skip
    assert created.code == 0, created.stderr
    assert "sklearn deployment iris is created" in created.stdout
    isvc = cluster.api.get_object("inferenceservices", NS, "iris")  # type: ignore[attr-defined]
    assert isvc is not None and "/mlflow/" in isvc["spec"]["predictor"]["model"]["storageUri"]

    again = mlflow_cli("create", *target, "--name", "iris", "-m", "models:/iris/1", "-C", f"namespace={NS}", env=env)  # fmt: skip
    assert "already exists in fuseml-workloads" in one_line_error(again)

    got = mlflow_cli("get", *target, "--name", "iris", "--endpoint", NS, env=env)
    assert got.code == 0, got.stderr
    assert "ready: True" in got.stdout and "engine: sklearn" in got.stdout
    assert "prediction_url: http://" in got.stdout and "/v1/models/iris:predict" in got.stdout

    listed = mlflow_cli("list", *target, "--endpoint", NS, env=env)
    assert listed.code == 0 and "'name': 'iris'" in listed.stdout, listed.stderr
    empty = mlflow_cli("list", *target, env=env)  # the context's namespace holds none
    assert empty.code == 0 and "[]" in empty.stdout, empty.stderr

    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(ROWS))
    out = tmp_path / "predictions.json"
    predicted = mlflow_cli(
        "predict", *target, "--name", f"{NS}/iris", "--input-path", str(rows),
        "--output-path", str(out), env=env,
    )  # fmt: skip
    assert predicted.code == 0, predicted.stderr
    assert json.loads(out.read_text()) == {"predictions": [0, 2]}

    # update without -m: the same model folder, another config; with -m: another model
    updated = mlflow_cli("update", *target, "--name", "iris", "--endpoint", NS, "-C", "timeout=90", env=env)  # fmt: skip
    assert updated.code == 0 and "(with flavor sklearn)" in updated.stdout, updated.stderr
    boost = mlflow_cli(
        "update", *target, "--name", "iris", "--endpoint", NS, "-m", s3_model("xgboost"), env=env
    )
    assert boost.code == 0 and "(with flavor xgboost)" in boost.stdout, boost.stderr
    isvc = cluster.api.get_object("inferenceservices", NS, "iris")  # type: ignore[attr-defined]
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] == "xgboost"

    deleted = mlflow_cli("delete", *target, "--name", "iris", "--endpoint", NS, env=env)
    assert deleted.code == 0 and "Deployment iris is deleted" in deleted.stdout, deleted.stderr
    for plural in ("inferenceservices", "secrets", "serviceaccounts"):
        assert cluster.api.list_objects(plural, NS) == []  # type: ignore[attr-defined]
    twice = mlflow_cli("delete", *target, "--name", "iris", "--endpoint", NS, env=env)
    assert twice.code == 0, twice.stderr  # idempotent, as MLflow asks
    gone = mlflow_cli("get", *target, "--name", "iris", "--endpoint", NS, env=env)
    assert "no deployment iris in fuseml-workloads" in one_line_error(gone)
    assert SECRET_KEY not in "".join(OUTPUTS)


def test_bad_config_is_one_line_and_writes_nothing(
    s3: S3Server, cluster: Cluster, s3_model, bucket: str
) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster)
    url = s3_model("sklearn_pickle")
    for config, message in (
        ("replicas=2", "unknown deployment config key replicas; valid keys: namespace, predictor"),
        ("timeout=soon", "config key timeout='soon' is not a positive number of seconds"),
        ("force=maybe", "config key force='maybe' is not a boolean"),
    ):
        done = mlflow_cli("create", "-t", "kserve", "--name", "iris", "-m", url, "-C", config, env=env)  # fmt: skip
        assert done.code == 2 and message in one_line_error(done), done.stderr
    bad_target = mlflow_cli("list", "-t", "kserve://test", env=env)
    assert "is not kserve or kserve:/<kube-context>" in one_line_error(bad_target)
    for plural in ("inferenceservices", "secrets", "serviceaccounts"):
        assert cluster.api.list_objects(plural, "default") == []  # type: ignore[attr-defined]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any("/kserve/" in k for k in keys)  # no layout was converted


def test_delete_refuses_what_kserve_predictor_did_not_make(s3: S3Server, cluster: Cluster) -> None:
    cluster.api.put_object(  # type: ignore[attr-defined]
        "inferenceservices",
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "taken", "namespace": "default", "labels": {"team": "search"}},
            "spec": {
                "predictor": {
                    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://other/model"}
                }
            },
        },
    )
    env = env_for(s3, cluster)
    refused = mlflow_cli("delete", "-t", "kserve", "--name", "taken", env=env)
    line = one_line_error(refused)
    assert refused.code == 2 and "belongs to another owner" in line and "-C force=true" in line
    assert cluster.api.get_object("inferenceservices", "default", "taken") is not None  # type: ignore[attr-defined]
    listed = mlflow_cli("list", "-t", "kserve", env=env)
    assert listed.code == 0 and "taken" not in listed.stdout  # not ours: not listed
    forced = mlflow_cli("delete", "-t", "kserve", "--name", "taken", "-C", "force=true", env=env)
    assert forced.code == 0, forced.stderr
    assert cluster.api.get_object("inferenceservices", "default", "taken") is None  # type: ignore[attr-defined]


def test_endpoints_are_namespaces(s3: S3Server, cluster: Cluster) -> None:
    env = env_for(s3, cluster)
    got = mlflow_cli("get-endpoint", "-t", "kserve", "--endpoint", NS, env=env)
    assert got.code == 0 and f"name: {NS}" in got.stdout and "deployments: []" in got.stdout
    missing = mlflow_cli("get-endpoint", "-t", "kserve", "--endpoint", "nowhere", env=env)
    assert "no namespace nowhere" in one_line_error(missing)
    # `mlflow deployments create-endpoint` cannot call any plugin (MLflow 3.17's command takes
    # `name` but its option is --endpoint): the Python API it is.
    from mlflow.deployments import get_deploy_client
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="kubectl create namespace models"):
        get_deploy_client("kserve").create_endpoint("models")


def test_help_names_the_target_uris_and_config_keys() -> None:
    done = mlflow_cli("help", "-t", "kserve", env={})
    assert done.code == 0, done.stderr
    for text in ("kserve:/<kube-context>", *mlflow_config.DEPLOY_KEYS, "min_replicas", "run-local"):
        assert text in done.stdout


def test_run_local_serves_on_the_port_asked_and_stops(zoo: Path, tmp_path: Path) -> None:
    from test_local_deploy import servers_named

    home = {"KSERVE_PREDICTOR_HOME": str(tmp_path / "home")}
    port = free_port()
    done = mlflow_cli(
        "run-local", "-t", "kserve", "--name", "iris-local", "-m", str(zoo / "sklearn_pickle"),
        "-C", f"port={port}", env=home,
    )  # fmt: skip
    try:
        assert done.code == 0, done.stderr
        assert f"http://127.0.0.1:{port}/v1/models/iris-local:predict" in done.stderr
        answer = requests.post(
            f"http://127.0.0.1:{port}/v1/models/iris-local:predict",
            json={"instances": ROWS[:1]},
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json()["predictions"] == [0], answer.text
        # `predict` finds the run-local deployment by its name (no cluster is configured).
        rows = tmp_path / "rows.json"
        rows.write_text(json.dumps(ROWS))
        out = tmp_path / "predictions.json"
        predicted = mlflow_cli(
            "predict", "-t", "kserve", "--name", "iris-local", "--input-path", str(rows),
            "--output-path", str(out), env=home,
        )  # fmt: skip
        assert predicted.code == 0, predicted.stderr
        assert json.loads(out.read_text()) == {"predictions": [0, 2]}
    finally:
        stopped = run_cli("delete", "iris-local", "--target", "local", env=home)
    assert stopped.code == 0, stopped.stderr
    assert servers_named("iris-local") == []
    bad = mlflow_cli("run-local", "-t", "kserve", "--name", "x", "-m", str(zoo / "onnx"), "-C", "port=http", env=home)  # fmt: skip
    assert "config key port='http' is not a port number" in one_line_error(bad)


def test_create_with_a_local_model_says_why_kserve_cannot_use_it(zoo: Path, tmp_path: Path) -> None:
    """Checked before the cluster: with no readable kubeconfig the model is still the error."""
    env = {"KUBECONFIG": str(tmp_path / "absent")}
    for command in ("create", "update"):
        done = mlflow_cli(command, "-t", "kserve", "--name", "iris", "-m", str(zoo / "sklearn_pickle"), env=env)  # fmt: skip
        error = one_line_error(done)
        assert "is not in S3, which KServe's storage initializer needs" in error
        assert "mlflow deployments run-local -t kserve" in error and done.code == 2
    # A mistyped context in the target URI is named as such, with the kubeconfig's contexts.
    config = tmp_path / "kubeconfig"
    config.write_text(
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "contexts: [{name: test, context: {cluster: c}}]\ncurrent-context: test\n"
    )
    typo = mlflow_cli(
        "get", "-t", "kserve:/tset", "--name", "iris", env={"KUBECONFIG": str(config)}
    )
    assert (
        f"context 'tset' of the target URI kserve:/tset is not in kubeconfig {config} (KUBECONFIG); "
        "choose one of its contexts: test"
    ) in one_line_error(typo)


def test_serving_options_are_config_keys(s3: S3Server, cluster: Cluster, s3_model) -> None:  # type: ignore[no-untyped-def]
    env = env_for(s3, cluster)
    url = s3_model("sklearn_pickle")
    done = mlflow_cli("create", "-t", "kserve", "--name", "scaled", "-m", url, "-C", "min_replicas=2", env=env)  # fmt: skip
    assert done.code == 0, done.stderr
    isvc = cluster.api.get_object("inferenceservices", "default", "scaled")  # type: ignore[attr-defined]
    assert isvc["spec"]["predictor"]["minReplicas"] == 2
    bad = mlflow_cli("create", "-t", "kserve", "--name", "bad", "-m", url, "-C", "min_replicas=-1", env=env)  # fmt: skip
    assert bad.code == 2 and "config key min_replicas" in one_line_error(bad)


# --- the config and target URI rules, without a cluster ---------------------------------------


def test_target_uris_name_a_kube_context() -> None:
    assert mlflow_config.kube_context("kserve") is None
    assert mlflow_config.kube_context("kserve:/prod") == "prod"
    arn = "arn:aws:eks:eu-west-1:123456789012:cluster/prod"
    assert mlflow_config.kube_context(f"kserve:/{arn}") == arn  # slashes and colons kept
    for bad in ("kserve://prod", "sagemaker:/x", "kserve:prod"):
        with pytest.raises(UsageError, match="kserve:/<kube-context>"):
            mlflow_config.kube_context(bad)


def test_names_flavors_and_namespaces() -> None:
    assert mlflow_config.split_name("models/iris", None) == ("iris", "models")
    assert mlflow_config.split_name("iris", "models") == ("iris", "models")
    with pytest.raises(UsageError, match="give it once"):
        mlflow_config.split_name("a/iris", "b")
    assert mlflow_config.predictor_of("python_function", {}) == "mlflow"
    assert mlflow_config.predictor_of("onnx", {}) == "triton"
    assert mlflow_config.predictor_of(None, {"predictor": "xgboost"}) == "xgboost"
    with pytest.raises(UsageError, match="disagree"):
        mlflow_config.predictor_of("sklearn", {"predictor": "xgboost"})
    with pytest.raises(UsageError, match="names no predictor"):
        mlflow_config.predictor_of("h2o", {})
    with pytest.raises(UsageError, match="disagree"):
        mlflow_config.deploy_config({"namespace": "a"}, namespace="b")
    assert mlflow_config.deploy_config({"timeout": 30, "force": True}).timeout == 30.0


def test_messages_spell_flags_as_config_keys() -> None:
    message = (
        "pass --force (FUSEML_FORCE=true); declare them with --runtime-libraries 'numpy==2.2.4'"
    )
    assert mlflow_config.as_config_keys(message) == (
        "pass -C force=true (FUSEML_FORCE=true); declare them with -C runtime_libraries='numpy==2.2.4'"
    )
