"""The FuseML step end to end: `run` exactly as FuseML runs it, against the Kubernetes API test
server with the KServe controller simulation, moto's S3 server and the FuseML test server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from conftest import SECRET_KEY, Cluster, S3Server, codeset, run_cli, step_env

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
REQUESTS = {
    "sklearn": {"instances": ROWS},
    "tensorflow": {"instances": ROWS},
    "triton": {
        "inputs": [
            {
                "name": "X",
                "shape": [2, 4],
                "datatype": "FP32",
                "data": [v for row in ROWS for v in row],
            }
        ]
    },
}


def check_answer(engine: str, answer: dict) -> None:  # type: ignore[type-arg]
    if engine == "sklearn":
        assert answer == {"predictions": [0, 2]}
    elif engine == "tensorflow":  # the model doubles its input
        assert answer["predictions"] == [[pytest.approx(2 * v) for v in row] for row in ROWS]
    else:
        outputs = {o["name"]: o for o in answer["outputs"]}
        assert outputs["label"]["data"] == [0, 2] and outputs["probabilities"]["shape"] == [2, 3]


WORKFLOW = "mlflow-e2e"
NAMESPACE = "fuseml-workloads"
# <project>-<codeset>-<workflow> is 41 characters: too long for KServe's host name
# <name>-predictor-fuseml-workloads, so the default name is shortened (with a hash).
APP = "mlflow-project-01-iris-codese-cf6621"


@pytest.mark.parametrize(
    ("model", "engine", "path"),
    [
        ("sklearn_pickle", "sklearn", f"/v1/models/{APP}:predict"),
        ("onnx", "triton", f"/v2/models/{APP}/infer"),
        ("tf_module", "tensorflow", f"/v1/models/{APP}:predict"),
    ],
)
def test_run_deploys_registers_and_outputs_the_url(
    s3: S3Server,
    s3_model,
    cluster: Cluster,
    fuseml,
    tmp_path: Path,
    model: str,
    engine: str,
    path: str,
) -> None:
    url = s3_model(model)
    results = tmp_path / "results"
    env = step_env(s3, cluster, fuseml, url, results)
    done = run_cli("run", env=env, cwd=codeset(tmp_path))
    assert done.code == 0, done.stderr
    app = APP
    expected_url = done.stdout.strip()
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+{re.escape(path)}", expected_url)
    assert (results / "prediction-url").read_text() == expected_url
    # The URL the step printed answers real predictions, in the engine's protocol.
    answer = requests.post(expected_url, json=REQUESTS[engine], timeout=30).json()
    check_answer(engine, answer)

    api = cluster.api
    isvc = api.get_object("inferenceservices", NAMESPACE, app)  # type: ignore[attr-defined]
    labels = isvc["metadata"]["labels"]
    assert labels["fuseml/app-guid"] == f"mlflow-project-01.iris-codeset.{WORKFLOW}"
    assert labels["fuseml/workflow"] == WORKFLOW and labels["fuseml/org"] == "mlflow-project-01"
    assert labels["app.kubernetes.io/managed-by"] == "kserve-predictor"
    predictor = isvc["spec"]["predictor"]
    assert predictor["serviceAccountName"] == f"{app}-kserve"
    assert re.fullmatch(
        re.escape(f"{url}/kserve/{engine}-") + "[0-9a-f]{16}/", predictor["model"]["storageUri"]
    )
    assert predictor["model"]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    secret = api.get_object("secrets", NAMESPACE, f"{app}-kserve")  # type: ignore[attr-defined]
    notes = secret["metadata"]["annotations"]
    assert notes["serving.kserve.io/s3-usehttps"] == "0"  # the endpoint is http://
    assert notes["serving.kserve.io/s3-endpoint"] == s3.endpoint.split("://")[1]
    account = api.get_object("serviceaccounts", NAMESPACE, f"{app}-kserve")  # type: ignore[attr-defined]
    assert account["secrets"] == [{"name": f"{app}-kserve"}]

    record = fuseml.applications[app]
    assert record["url"] == expected_url and record["type"] == "predictor"
    assert record["workflow"] == WORKFLOW and record["k8s_namespace"] == NAMESPACE
    assert {r["kind"] for r in record["k8s_resources"]} == {
        "InferenceService",
        "Secret",
        "ServiceAccount",
    }
    assert SECRET_KEY not in done.stdout + done.stderr


def test_rerun_changes_nothing_and_new_version_updates(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:
    url = s3_model("sklearn_pickle")
    env = step_env(s3, cluster, fuseml, url, tmp_path / "r", FUSEML_APP_NAME="iris")
    work = codeset(tmp_path)
    assert run_cli("run", env=env, cwd=work).code == 0
    api = cluster.api
    first = api.get_object("inferenceservices", NAMESPACE, "iris")  # type: ignore[attr-defined]
    writes = {
        k: api.write_count(k, NAMESPACE, n)
        for k, n in (
            ("inferenceservices", "iris"),
            ("secrets", "iris-kserve"),
            ("serviceaccounts", "iris-kserve"),
        )
    }  # type: ignore[attr-defined]

    again = run_cli("run", "--output", "json", env=env, cwd=work)
    assert again.code == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["changed"] == [] and data["copied"] == []
    second = api.get_object("inferenceservices", NAMESPACE, "iris")  # type: ignore[attr-defined]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert {
        k: api.write_count(k, NAMESPACE, n)
        for k, n in (
            ("inferenceservices", "iris"),
            ("secrets", "iris-kserve"),
            ("serviceaccounts", "iris-kserve"),
        )
    } == writes  # type: ignore[attr-defined]

    # A new model version: the service is updated and the step waits for the new generation.
    new_url = s3_model("sklearn_pickle")
    updated = run_cli("run", "--output", "json", env={**env, "FUSEML_MODEL": new_url}, cwd=work)
    assert updated.code == 0, updated.stderr
    third = api.get_object("inferenceservices", NAMESPACE, "iris")  # type: ignore[attr-defined]
    assert third["metadata"]["generation"] == first["metadata"]["generation"] + 1
    assert third["status"]["observedGeneration"] == third["metadata"]["generation"]
    assert third["spec"]["predictor"]["model"]["storageUri"].startswith(
        f"{new_url}/kserve/sklearn-"
    )
    assert json.loads(updated.stdout)["changed"] == ["InferenceService/iris"]


def test_two_triton_apps_from_one_model_both_stay_served(
    s3: S3Server, s3_model, cluster: Cluster, tmp_path: Path
) -> None:
    """Triton names its model folder after the app: each app gets its own layout, and deploying
    the second leaves every file of the first where its pods read it."""
    from servers.storage_initializer import download

    url = s3_model("onnx")
    env = {**s3.env, "KUBECONFIG": str(cluster.kubeconfig)}
    deployed = {}
    for app in ("alpha", "beta"):
        done = run_cli(
            "deploy", "--model", url, "--app-name", app, "-n", NAMESPACE, "--output", "json",
            env=env,
        )  # fmt: skip
        assert done.code == 0, done.stderr
        deployed[app] = json.loads(done.stdout)
        if app == "alpha":  # what alpha's pods download, before beta is deployed
            first = download(s3.client(), deployed[app]["storage_uri"], tmp_path / "alpha-1")
    assert deployed["alpha"]["storage_uri"] != deployed["beta"]["storage_uri"]
    # A restarted alpha pod downloads the same files, and both URLs answer.
    again = download(s3.client(), deployed["alpha"]["storage_uri"], tmp_path / "alpha-2")
    assert again == first == ["alpha/1/model.onnx", "alpha/config.pbtxt"]
    for app, answer in deployed.items():
        assert answer["prediction_url"].endswith(f"/v2/models/{app}/infer")
        check_answer(
            "triton",
            requests.post(answer["prediction_url"], json=REQUESTS["triton"], timeout=30).json(),
        )
        stored = cluster.api.get_object("inferenceservices", NAMESPACE, app)  # type: ignore[attr-defined]
        assert stored["status"]["conditions"][-1]["status"] == "True"


def test_failing_model_load_fails_fast_with_the_cause(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path, bucket: str
) -> None:
    url = s3_model("sklearn_pickle")
    key = url.split(bucket + "/", 1)[1] + "/model.pkl"
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"this is not a pickle")
    env = step_env(
        s3, cluster, fuseml, url, tmp_path / "r", FUSEML_APP_NAME="broken", FUSEML_TIMEOUT="300"
    )
    import time

    start = time.monotonic()
    done = run_cli("run", env=env, cwd=codeset(tmp_path))
    assert time.monotonic() - start < 60
    assert done.code == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "error: InferenceService fuseml-workloads/broken failed: ModelLoadFailed"
    )
    assert "Traceback" not in done.stderr
    assert "broken" not in fuseml.applications


def test_image_pull_failure_fails_before_the_timeout(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:
    cluster.missing_images.add("kserve/sklearnserver:v9.9.9-missing")
    env = step_env(
        s3,
        cluster,
        fuseml,
        s3_model("sklearn_pickle"),
        tmp_path / "r",
        FUSEML_APP_NAME="pull",
        FUSEML_RUNTIME_VERSION="v9.9.9-missing",
    )
    done = run_cli("run", env=env, cwd=codeset(tmp_path))
    assert done.code == 1
    assert "ImagePullBackOff" in done.stderr and "v9.9.9-missing" in done.stderr


def test_legacy_spec_style_on_a_cluster_without_serving_runtimes(
    s3: S3Server, s3_model, tmp_path: Path, fuseml
) -> None:  # type: ignore[no-untyped-def]
    from conftest import LocalRuntimes
    from servers.k8s_api import KubeApiServer, crd_available
    from servers.kserve_controller import KServeController

    if not crd_available():
        pytest.skip("../shared/kserve/crd is absent")
    runtimes = LocalRuntimes()
    try:
        with KubeApiServer(serving_runtime_api=False, namespaces=("default", NAMESPACE)) as api:
            KServeController(api, runtimes).attach()
            kubeconfig = api.write_kubeconfig(tmp_path / "kc")
            env = {**s3.env, "KUBECONFIG": str(kubeconfig)}
            done = run_cli(
                "deploy",
                "--model",
                s3_model("sklearn_pickle"),
                "--app-name",
                "legacy",
                "-n",
                NAMESPACE,
                "--output",
                "json",
                env=env,
            )
            assert done.code == 0, done.stderr
            assert json.loads(done.stdout)["spec_style"] == "legacy"
            assert json.loads(done.stdout)["registered"] is False  # no FuseML server given
            sent = [
                r
                for r in api.requests
                if r.method == "PATCH" and r.path.endswith("inferenceservices/legacy")
            ]
            assert sent and all(r.content_type == "application/apply-patch+yaml" for r in sent)
            stored = api.get_object("inferenceservices", NAMESPACE, "legacy")
            assert (
                stored["spec"]["predictor"]["model"]["modelFormat"]["name"] == "sklearn"
            )  # rewritten by the webhook
    finally:
        runtimes.close()


def test_outside_fuseml_an_empty_fuseml_server_url_skips_the_registration(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Plain Tekton or Argo: no FuseML server and no FuseML workflow; the step deploys and
    outputs the URL, and says once that it registers nothing."""
    results = tmp_path / "results"
    env = step_env(
        s3, cluster, fuseml, s3_model("sklearn_pickle"), results,
        FUSEML_SERVER_URL="", FUSEML_APP_NAME="iris-plain",
    )  # fmt: skip
    del env["FUSEML_ENV_WORKFLOW_NAME"]  # set by FuseML only
    done = run_cli("run", env=env, cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert (results / "prediction-url").read_text() == done.stdout.strip()
    assert done.stdout.strip().endswith("/v1/models/iris-plain:predict")
    skipped = [line for line in done.stderr.splitlines() if "FUSEML_SERVER_URL" in line]
    assert skipped == [
        "INFO kserve_predictor.step: FUSEML_SERVER_URL is empty: not registering the service "
        "with FuseML"
    ], done.stderr
    assert fuseml.applications == {} and fuseml.requests_log == []
    assert cluster.api.get_object("inferenceservices", NAMESPACE, "iris-plain") is not None  # type: ignore[attr-defined]
