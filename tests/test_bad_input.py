"""Bad input, table-driven: each case gives a one-line error naming the input and the fix, exit
code 2 for bad input and 1 for failures of the systems around the step, no traceback, no
secret, and nothing created, uploaded or registered anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import (
    SECRET_KEY,
    Cluster,
    S3Server,
    codeset,
    free_port,
    moto_process,
    run_cli,
    step_env,
)

NS = "fuseml-workloads"


@dataclass
class Case:
    id: str
    code: int
    needle: str
    env: dict[str, str] = field(default_factory=dict)
    """Overrides of the step environment; '{...}' placeholders are filled per test."""
    model: str = "sklearn_pickle"
    deploy_args: list[str] | None = None
    """Run `deploy` with these flags instead of the `run` step."""
    setup: str = ""


CASES = [
    # model URL
    Case("model-empty", 2, "FUSEML_MODEL is empty", {"FUSEML_MODEL": ""}),
    Case("model-malformed", 2, "no valid bucket", {"FUSEML_MODEL": "s3:/bucket-only/model"}),
    Case(
        "model-unknown-scheme", 2, "unsupported scheme 'gs'", {"FUSEML_MODEL": "gs://bucket/model"}
    ),
    Case(
        "model-http-scheme",
        2,
        "unsupported scheme 'https'",
        {"FUSEML_MODEL": "https://example.org/model"},
    ),
    Case(
        "model-missing-bucket",
        2,
        "does not exist",
        {"FUSEML_MODEL": "s3://no-such-bucket-kp/1/model"},
    ),
    Case(
        "model-missing-prefix",
        2,
        "names a bucket but no model folder",
        {"FUSEML_MODEL": "s3://{bucket}"},
    ),
    Case(
        "model-empty-prefix",
        2,
        "nothing is stored there",
        {"FUSEML_MODEL": "s3://{bucket}/no/model/here"},
    ),
    Case("model-not-a-model-folder", 2, "has no MLmodel file", model="broken_no_mlmodel"),
    Case("mlmodel-not-yaml", 2, "MLmodel is not valid YAML", model="broken_not_yaml"),
    Case(
        "mlmodel-no-known-flavor",
        2,
        "no supported flavor (found: h2o",
        model="broken_unknown_flavor",
    ),
    Case("mlmodel-path-escapes", 2, "outside the model folder", model="broken_escaping_path"),
    Case("mlmodel-absolute-path", 2, "outside the model folder", setup="absolute-path"),
    Case("model-local-path", 2, "not in S3", {"FUSEML_MODEL": "/tmp"}),
    Case(
        "model-file-remote-host", 2, "names a remote host", {"FUSEML_MODEL": "file://server/model"}
    ),
    Case(
        "model-registry-without-tracking",
        2,
        "set MLFLOW_TRACKING_URI",
        {"FUSEML_MODEL": "models:/iris/1"},
    ),
    # predictor
    Case("predictor-unknown", 2, "unknown predictor 'pytorch'", {"FUSEML_PREDICTOR": "pytorch"}),
    Case(
        "predictor-mismatch",
        2,
        "predictor 'tensorflow' cannot serve",
        {"FUSEML_PREDICTOR": "tensorflow"},
    ),
    Case("predictor-skops-default", 2, "serialization_format='cloudpickle'", model="sklearn_skops"),
    Case("predictor-keras-native", 2, "save_exported_model=True", model="keras_native"),
    Case("predictor-lightgbm-skops", 2, "log model.booster_", model="lightgbm_sklearn"),
    # app name
    Case(
        "app-name-characters", 2, "not a valid InferenceService name", {"FUSEML_APP_NAME": "My_App"}
    ),
    Case("app-name-too-long", 2, "53 or fewer", {"FUSEML_APP_NAME": "a" * 54}),
    # <name>-predictor-fuseml-workloads must fit 63 characters: 36 here
    Case("app-name-too-long-for-namespace", 2, "36 or fewer", {"FUSEML_APP_NAME": "a" * 37}),
    Case(
        "app-name-leading-digit",
        2,
        "not a valid InferenceService name",
        {"FUSEML_APP_NAME": "1app"},
    ),
    Case(
        "app-name-trailing-dash",
        2,
        "not a valid InferenceService name",
        {"FUSEML_APP_NAME": "app-"},
    ),
    Case("app-name-empty-flag", 2, "--app-name is empty", deploy_args=["--app-name", ""]),
    # resources limits
    Case("limits-not-yaml", 2, "is not YAML", {"FUSEML_RESOURCES_LIMITS": "{cpu: ["}),
    Case("limits-list", 2, "is not a mapping", {"FUSEML_RESOURCES_LIMITS": "[1, 2]"}),
    Case("limits-scalar", 2, "is not a mapping", {"FUSEML_RESOURCES_LIMITS": "gpu"}),
    Case(
        "limits-bad-quantity",
        2,
        'memory="lots" is not a Kubernetes quantity',
        {"FUSEML_RESOURCES_LIMITS": "{memory: lots}"},
    ),
    Case(
        "limits-negative",
        2,
        "cpu=-1 is not a Kubernetes quantity",
        {"FUSEML_RESOURCES_LIMITS": "{cpu: -1}"},
    ),
    Case(
        "limits-unknown-unit",
        2,
        "is not a Kubernetes quantity",
        {"FUSEML_RESOURCES_LIMITS": "{memory: 2Xi}"},
    ),
    Case(
        "limits-boolean",
        2,
        "is not a Kubernetes quantity",
        {"FUSEML_RESOURCES_LIMITS": "{nvidia.com/gpu: true}"},
    ),
    # runtime version
    Case(
        "runtime-version-space", 2, "cannot be an image tag", {"FUSEML_RUNTIME_VERSION": "2.14 rc"}
    ),
    Case(
        "runtime-version-shell",
        2,
        "cannot be an image tag",
        {"FUSEML_RUNTIME_VERSION": "v1;rm -rf /"},
    ),
    Case(
        "runtime-version-path", 2, "cannot be an image tag", {"FUSEML_RUNTIME_VERSION": "../latest"}
    ),
    # credentials
    Case(
        "credentials-missing",
        2,
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
    ),
    Case("credentials-wrong", 2, "access denied", setup="auth-s3"),
    # endpoints
    Case(
        "s3-endpoint-not-a-url",
        2,
        "MLFLOW_S3_ENDPOINT_URL='minio:9000' is not an http(s) URL",
        {"MLFLOW_S3_ENDPOINT_URL": "minio:9000"},
    ),
    Case(
        "s3-endpoint-unreachable",
        1,
        "nothing answers at S3 endpoint http://127.0.0.1:",
        {"MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:{free_port}"},
    ),
    Case("fuseml-url-not-a-url", 2, "is not an http(s) URL", {"FUSEML_SERVER_URL": "fuseml-core"}),
    Case(
        "fuseml-unreachable",
        1,
        "FuseML server at http://127.0.0.1:",
        {"FUSEML_SERVER_URL": "http://127.0.0.1:{free_port}"},
    ),
    Case("k8s-unreachable", 1, "nothing answers at the Kubernetes API", setup="k8s-unreachable"),
    Case(
        "k8s-no-config",
        2,
        "kubeconfig /nonexistent/kubeconfig (KUBECONFIG) does not exist",
        {"KUBECONFIG": "/nonexistent/kubeconfig"},
    ),
    Case(
        "fuseml-unset-default",
        1,
        "FuseML server at http://fuseml-core.fuseml-core.svc.cluster.local:80 (from the default "
        "address; FUSEML_SERVER_URL is unset): host name not resolved",
        setup="fuseml-unset",
    ),
    Case(
        "namespace-missing",
        2,
        "namespace 'nowhere' does not exist",
        {"FUSEML_ENV_WORKFLOW_NAMESPACE": "nowhere"},
    ),
    Case("k8s-forbidden-isvc", 2, "permission denied", setup="forbid-isvc"),
    Case("k8s-forbidden-secrets", 2, "permission denied", setup="forbid-secrets"),
    # other step inputs
    Case(
        "timeout-not-a-number",
        2,
        "FUSEML_TIMEOUT='soon' is not a positive number",
        {"FUSEML_TIMEOUT": "soon"},
    ),
    Case(
        "force-not-a-boolean",
        2,
        "FUSEML_FORCE='perhaps' is not a boolean",
        {"FUSEML_FORCE": "perhaps"},
    ),
    Case(
        "workflow-missing-for-fuseml",
        2,
        "registering with FuseML needs a workflow name",
        {"FUSEML_ENV_WORKFLOW_NAME": ""},
    ),
    Case("task-result-path", 2, "TASK_RESULT='../x' is not a file name", {"TASK_RESULT": "../x"}),
]


@pytest.fixture
def auth_s3() -> Iterator[str]:
    """A second S3 server that checks credentials (moto with IAM auth on): unknown keys → 403."""
    with moto_process(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as port:
        yield f"http://127.0.0.1:{port}"


def test_the_table_has_enough_cases() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case,
    s3: S3Server,
    s3_model,
    bucket: str,
    cluster: Cluster,
    fuseml,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:  # type: ignore[no-untyped-def]
    url = s3_model(case.model)
    env = step_env(
        s3, cluster, fuseml, url, tmp_path / "results",
        FUSEML_VERBOSE="true", KSERVE_PREDICTOR_RETRY_SECONDS="3", FUSEML_APP_NAME="iris",
    )  # fmt: skip
    fill = {"{bucket}": bucket, "{free_port}": str(free_port())}
    for key, value in case.env.items():
        for placeholder, actual in fill.items():
            value = value.replace(placeholder, actual)
        env[key] = value
    if case.setup == "absolute-path":
        key = url.split(f"{bucket}/", 1)[1] + "/MLmodel"
        s3.client().put_object(
            Bucket=bucket, Key=key, Body=b"flavors:\n  onnx:\n    data: /etc/passwd\n"
        )
    elif case.setup == "auth-s3":
        env["MLFLOW_S3_ENDPOINT_URL"] = request.getfixturevalue("auth_s3")
    elif case.setup == "k8s-unreachable":
        kubeconfig = tmp_path / "unreachable-kubeconfig"
        kubeconfig.write_text(
            cluster.kubeconfig.read_text().replace(
                cluster.api.url, f"http://127.0.0.1:{free_port()}"
            )
        )  # type: ignore[attr-defined]
        env["KUBECONFIG"] = str(kubeconfig)
    elif case.setup == "fuseml-unset":
        del env["FUSEML_SERVER_URL"]
    elif case.setup == "forbid-isvc":
        cluster.api.forbidden.add(("patch", "inferenceservices"))  # type: ignore[attr-defined]
    elif case.setup == "forbid-secrets":
        cluster.api.forbidden.add(("patch", "secrets"))  # type: ignore[attr-defined]

    if case.deploy_args is not None:
        done = run_cli("deploy", "--model", url, "-n", NS, *case.deploy_args, env=env)
    else:
        done = run_cli("run", env=env, cwd=codeset(tmp_path))

    assert done.code == case.code, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and case.needle in errors[0], done.stderr
    assert "Traceback" not in done.stderr and SECRET_KEY not in done.stdout + done.stderr
    assert done.stdout == ""
    # Nothing created, uploaded or registered.
    for plural in ("inferenceservices", "secrets", "serviceaccounts"):
        assert cluster.api.list_objects(plural, NS) == []  # type: ignore[attr-defined]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any("/kserve/" in k for k in keys)
    assert fuseml.applications == {}
    assert not (tmp_path / "results" / "prediction-url").exists()
