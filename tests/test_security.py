"""Secrets stay in the Kubernetes Secret, certificates are verified by default, and the deploy
step never loads (unpickles) a model."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    ACCESS_KEY,
    SECRET_KEY,
    Cluster,
    S3Server,
    codeset,
    free_port,
    moto_process,
    run_cli,
)

NS = "fuseml-workloads"


def test_no_command_prints_a_secret_even_verbose(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, zoo: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = s3_model("sklearn_pickle")
    home = tmp_path / "home"
    env = {
        **s3.env,
        "KUBECONFIG": str(cluster.kubeconfig),
        "FUSEML_SERVER_URL": fuseml.url,
        "FUSEML_VERBOSE": "true",
        "KSERVE_PREDICTOR_HOME": str(home),
    }
    outputs: list[str] = []

    def run(*args: str, **kw: Any) -> None:
        done = run_cli(*args, env={**env, **kw.pop("extra", {})}, **kw)
        outputs.append(done.stdout + done.stderr)
        assert done.code == 0, done.stderr

    run("detect", url, "-v")
    run("convert", url, "-v")
    run(
        "deploy",
        "--model",
        url,
        "--app-name",
        "dry",
        "-n",
        NS,
        "--workflow",
        "wf",
        "--dry-run",
        "-v",
    )
    run(
        "deploy",
        "--model",
        url,
        "--app-name",
        "sec",
        "-n",
        NS,
        "--workflow",
        "wf",
        "-v",
        "--output",
        "json",
    )
    step_env = {
        "FUSEML_MODEL": url,
        "FUSEML_ENV_WORKFLOW_NAME": "wf",
        "FUSEML_ENV_WORKFLOW_NAMESPACE": NS,
        "TASK_RESULT": "url",
        "KSERVE_PREDICTOR_RESULTS_DIR": str(tmp_path / "results"),
    }
    run("run", extra=step_env, cwd=codeset(tmp_path))
    run("status", "sec", "-n", NS, "-v")
    run("delete", "sec", "-n", NS, "-v")
    run("deploy", "--target", "local", "--model", url, "--app-name", "loc", "-v")
    run("status", "-v")
    run("delete", "loc", "-v")
    # serve, in the foreground, until it says where it answers
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "kserve_predictor", "serve", url, "--port", str(port), "-v"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    assert serve.stdout is not None
    for line in serve.stdout:
        lines.append(line)
        if line.startswith("try it:") or ("prediction URL" in line and len(lines) > 3):
            break
    os.killpg(serve.pid, signal.SIGTERM)
    rest, _ = serve.communicate(timeout=30)
    outputs.append("".join(lines) + rest)
    assert any("prediction URL: http://127.0.0.1:" in line for line in lines)

    files = [
        p
        for p in [*home.rglob("*"), *(tmp_path / "results").rglob("*")]
        if p.is_file() and p.stat().st_size < 10_000_000
    ]
    texts = outputs + [p.read_text(errors="replace") for p in files]
    for text in texts:
        assert SECRET_KEY not in text and ACCESS_KEY not in text
    assert any("DEBUG" in text for text in outputs)  # verbose really was verbose
    # ... and the Secret is where it belongs.
    stored = cluster.api.get_object("secrets", NS, "mlflow-project-01-iris-codeset-wf-kserve")  # type: ignore[attr-defined]
    assert stored is not None and "AWS_SECRET_ACCESS_KEY" in stored["data"]


class Boom:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_the_deploy_step_never_loads_the_model(
    s3: S3Server, s3_model, bucket: str, cluster: Cluster, fuseml, zoo: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "the-model-was-unpickled"
    payload = pickle.dumps(Boom(marker))
    url = s3_model("sklearn_pickle")
    key = url.split(f"{bucket}/", 1)[1] + "/model.pkl"
    s3.client().put_object(Bucket=bucket, Key=key, Body=payload)
    local = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "local-model")
    (local / "model.pkl").write_bytes(payload)

    env = {**s3.env, "KUBECONFIG": str(cluster.kubeconfig), "FUSEML_SERVER_URL": fuseml.url}
    for args in (
        ["detect", url],
        ["convert", url],
        ["detect", str(local)],
        ["convert", str(local)],
        ["deploy", "--model", url, "--app-name", "boom", "-n", NS, "--workflow", "wf", "--dry-run"],
    ):
        assert run_cli(*args, env=env).code == 0
    # The whole step, up to the point where KServe (not the step) would load the model.
    cluster.missing_images.add("kserve/sklearnserver:never")
    step = {
        **env,
        "FUSEML_MODEL": url,
        "FUSEML_APP_NAME": "boom",
        "FUSEML_ENV_WORKFLOW_NAME": "wf",
        "FUSEML_ENV_WORKFLOW_NAMESPACE": NS,
        "FUSEML_RUNTIME_VERSION": "never",
        "FUSEML_TIMEOUT": "60",
    }
    done = run_cli("run", env=step, cwd=codeset(tmp_path))
    assert done.code == 1 and "ImagePullBackOff" in done.stderr
    assert not marker.exists()

    # The test can fail: loading this file really does run the code.
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import pickle; pickle.loads(open({str(local / 'model.pkl')!r}, 'rb').read())",
        ],
        check=False,
    )
    assert marker.exists()


@pytest.fixture
def tls_s3() -> Any:
    """An S3 server with a self-signed certificate (moto's --ssl)."""
    with moto_process("--ssl") as port:
        yield f"https://127.0.0.1:{port}"


def test_s3_certificates_are_verified_unless_opted_out(tls_s3: str, zoo: Path) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=tls_s3,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        verify=False,
    )
    client.create_bucket(Bucket="tls-models")
    for path in (zoo / "xgboost").rglob("*"):
        if path.is_file():
            client.upload_file(
                str(path), "tls-models", f"m/{path.relative_to(zoo / 'xgboost').as_posix()}"
            )
    env = {
        "MLFLOW_S3_ENDPOINT_URL": tls_s3,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    refused = run_cli("detect", "s3://tls-models/m", env=env)
    assert (
        refused.code == 1
        and "TLS verification" in refused.stderr
        and "KSERVE_PREDICTOR_S3_VERIFY_TLS=false" in refused.stderr
    )
    allowed = run_cli(
        "detect", "s3://tls-models/m", env={**env, "KSERVE_PREDICTOR_S3_VERIFY_TLS": "false"}
    )
    assert allowed.code == 0 and "xgboost" in allowed.stdout


def test_kubernetes_and_fuseml_verify_certificates_by_default(tmp_path: Path) -> None:
    from kserve_predictor.fuseml.client import FuseMLClient
    from kserve_predictor.kserve.connection import connect
    from kserve_predictor.settings.groups import ClusterSettings

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    assert connect(ClusterSettings(str(kubeconfig))).api.configuration.verify_ssl is True
    assert (
        connect(ClusterSettings(str(kubeconfig), verify_tls=False)).api.configuration.verify_ssl
        is False
    )
    assert FuseMLClient("https://fuseml.example").session.verify is True
    assert FuseMLClient("https://fuseml.example", verify_tls=False).session.verify is False


def test_no_secret_in_any_repr() -> None:
    """What a traceback, a debugger or a log line could show masks keys and URL passwords."""
    from kserve_predictor.kserve import manifests
    from kserve_predictor.ops.deploy_plan import DeployResult
    from kserve_predictor.settings.groups import (
        ClusterSettings,
        DeploySettings,
        FuseMLSettings,
        S3Settings,
    )

    s3 = S3Settings.from_env(
        {
            "MLFLOW_S3_ENDPOINT_URL": "http://minio:pa55w0rd-in-url@minio.example:9000",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
    )
    settings = DeploySettings(
        model_url="s3://bucket/model",
        app_name="iris",
        fuseml=FuseMLSettings("http://admin:fuseml-pa55@fuseml.example"),
        s3=s3,
    )
    secret = manifests.secret("iris", "default", s3, {})
    result = DeployResult("iris", "default", "sklearn", "v1", "s3://b/m", "model", [secret])
    cluster = ClusterSettings(kubeconfig="/k/config", context="https://u:kube-pa55@api.example")
    for obj in (s3, settings, result, cluster):
        text = repr(obj)
        for value in (ACCESS_KEY, SECRET_KEY, "pa55w0rd-in-url", "fuseml-pa55", "kube-pa55"):
            assert value not in text, f"{value} in {text}"
        assert type(obj).__name__ in text
    assert "minio.example:9000" in repr(s3) and "fuseml.example" in repr(settings)
    assert "'kind': 'Secret'" in repr(result) and "AWS_SECRET_ACCESS_KEY" in repr(result)
    assert result.manifests[0]["stringData"]["AWS_SECRET_ACCESS_KEY"] == SECRET_KEY  # untouched
