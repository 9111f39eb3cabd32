"""The compatibility check as users meet it: detect, the dry-run plan, refusing before any
write, --allow-incompatible, the InferenceService annotations, and auto's choice."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import yaml
from conftest import Cluster, S3Server, run_cli, seed_simulated_runtimes

from kserve_predictor.interfaces.step import settings_from_env

NS = "default"
# What a user writes to have kserve-sklearnserver answer predict_proba (its PREDICT_PROBA switch).
ASK_PROBABILITIES = yaml.safe_dump(
    {"spec": {"predictor": {"model": {"env": [{"name": "PREDICT_PROBA", "value": "true"}]}}}}
)


def env_for(s3: S3Server, cluster: Cluster, **extra: str) -> dict[str, str]:
    return {**s3.env, "KUBECONFIG": str(cluster.kubeconfig), **extra}


def stock_runtimes(cluster: Cluster) -> None:
    """The cluster's runtimes as a default KServe v0.20.0 install has them (the real images)."""
    from servers.kserve_controller import load_runtimes

    for runtime in load_runtimes():
        cluster.api.put_object("clusterservingruntimes", runtime)  # type: ignore[attr-defined]


def nothing_written(cluster: Cluster, s3: S3Server, bucket: str) -> None:
    for plural in ("inferenceservices", "secrets", "serviceaccounts"):
        assert cluster.api.list_objects(plural, NS) == []  # type: ignore[attr-defined]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any("/kserve/" in k for k in keys)


def test_detect_shows_the_runtime_image_and_verdict(zoo: Path) -> None:
    done = run_cli("detect", str(zoo / "sklearn_pickle"), "--output", "json")
    assert done.code == 0, done.stderr
    data = json.loads(done.stdout)
    compatibility = data["compatibility"]
    assert set(compatibility) == {"runtime", "image", "status", "problems", "runtime_version"}
    assert compatibility["runtime"] == "kserve-sklearnserver"
    assert compatibility["image"] == "kserve/sklearnserver:v0.20.0"
    # The quickstart's LogisticRegression from scikit-learn 1.9: the server calls predict, which
    # answers right on 1.5.2; only predict_proba (PREDICT_PROBA=true) would fail.
    assert compatibility["status"] == "warning" and data["runtime_source"] == "defaults"
    assert "scikit-learn 1.5.2" in compatibility["problems"][0]
    assert "PREDICT_PROBA=true" in compatibility["problems"][0]
    human = run_cli("detect", str(zoo / "sklearn_pickle"))
    assert "runtime:          kserve-sklearnserver (kserve/sklearnserver:v0.20.0" in human.stdout
    assert "KServe's v0.20.0 default runtimes" in human.stdout
    assert "compatibility:    warning" in human.stdout


def test_declared_runtime_libraries_change_the_verdict(zoo: Path) -> None:
    done = run_cli(
        "detect",
        str(zoo / "sklearn_pickle"),
        "--runtime-version",
        "v0.99.0",
        "--runtime-libraries",
        "scikit-learn==1.9.1,numpy==2.4.6",
        "--output",
        "json",
    )
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["compatibility"]["status"] == "ok"
    bad = run_cli("detect", str(zoo / "sklearn_pickle"), "--runtime-libraries", "sklearn>=1")
    assert bad.code == 2 and "NAME==VERSION" in bad.stderr


def test_the_quickstart_model_deploys_to_stock_kserve_with_a_warning(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:
    stock_runtimes(cluster)
    done = run_cli(
        "deploy", "--model", s3_model("sklearn_pickle"), "--app-name", "iris", "--dry-run",
        env=env_for(s3, cluster),
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert "compatibility warning on kserve/sklearnserver:v0.20.0" in done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    predictor = docs[-1]["spec"]["predictor"]["model"]
    assert predictor["modelFormat"]["name"] == "sklearn"
    assert "PREDICT_PROBA" not in str(predictor.get("env"))  # the product leaves it off


def test_incompatible_stops_before_any_write(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str
) -> None:
    stock_runtimes(cluster)
    done = run_cli(
        "deploy", "--model", s3_model("sklearn_pickle"), "--app-name", "iris",
        "--overlay", ASK_PROBABILITIES, env=env_for(s3, cluster),
    )  # fmt: skip
    assert done.code == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: kserve-sklearnserver (kserve/sklearnserver:v0.20.0)")
    assert "scikit-learn 1.9.1" in line and "scikit-learn 1.5.2" in line
    assert "calls predict_proba (PREDICT_PROBA=true" in line
    assert "--allow-incompatible" in line and "Traceback" not in done.stderr
    nothing_written(cluster, s3, bucket)
    dry = run_cli(
        "deploy", "--model", s3_model("sklearn_pickle"), "--app-name", "iris", "--dry-run",
        "--overlay", ASK_PROBABILITIES, env=env_for(s3, cluster),
    )  # fmt: skip
    assert dry.code == 2 and "predict_proba" in dry.stderr


def test_allow_incompatible_deploys_with_a_warning_and_annotations(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:
    stock_runtimes(cluster)
    done = run_cli(
        "deploy", "--model", s3_model("sklearn_pickle"), "--app-name", "iris",
        "--allow-incompatible", "--no-smoke-test", "--overlay", ASK_PROBABILITIES,
        env=env_for(s3, cluster),
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert "deploying anyway (--allow-incompatible)" in done.stderr
    isvc = cluster.api.get_object("inferenceservices", NS, "iris")  # type: ignore[attr-defined]
    annotations = isvc["metadata"]["annotations"]
    assert annotations["kserve-predictor/compatibility"] == "incompatible"
    assert annotations["kserve-predictor/runtime-image"] == "kserve/sklearnserver:v0.20.0"
    assert annotations["kserve-predictor/trained-scikit-learn"].startswith("1.9")
    assert "predict_proba" in annotations["kserve-predictor/compatibility-problems"]


def test_dry_run_plan_shows_the_verdict_and_403_falls_back_to_defaults(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str
) -> None:
    done = run_cli(
        "deploy", "--model", s3_model("onnx"), "--app-name", "iris", "--dry-run",
        env=env_for(s3, cluster),
    )  # fmt: skip
    assert done.code == 0, done.stderr
    # The test cluster's runtimes serve with this environment's libraries: an unknown image.
    assert (
        "# compatibility: warning on kserve-tritonserver (nvcr.io/nvidia/tritonserver:simulated)"
        in done.stdout
    )
    cluster.api.forbidden.add(("list", "clusterservingruntimes"))  # type: ignore[attr-defined]
    denied = run_cli(
        "deploy", "--model", s3_model("onnx"), "--app-name", "iris", "--dry-run",
        "--output", "json", env=env_for(s3, cluster),
    )  # fmt: skip
    assert denied.code == 0, denied.stderr
    assert "cannot list ClusterServingRuntimes" in denied.stderr
    data = json.loads(denied.stdout)
    assert data["compatibility"]["image"] == "nvcr.io/nvidia/tritonserver:23.05-py3"
    assert data["compatibility"]["status"] == "ok"
    nothing_written(cluster, s3, bucket)


def test_adjusted_runtime_version_reaches_the_manifest(
    s3: S3Server, cluster: Cluster, bucket: str, tmp_path: Path
) -> None:
    from conftest import upload

    stock_runtimes(cluster)
    model = onnx_ir10(tmp_path)
    url = upload(s3, model, bucket, "1/models/m-ir10/artifacts")
    done = run_cli(
        "deploy", "--model", url, "--app-name", "iris", "--dry-run", env=env_for(s3, cluster)
    )
    assert done.code == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert docs[2]["spec"]["predictor"]["model"]["runtimeVersion"] == "24.05-py3"
    assert "# compatibility: adjusted on kserve-tritonserver" in done.stdout


def onnx_ir10(tmp_path: Path) -> Path:
    """An MLflow ONNX model folder whose file starts like an IR 10 ModelProto."""
    folder = tmp_path / "ir10"
    folder.mkdir()
    (folder / "MLmodel").write_text(
        yaml.safe_dump({"flavors": {"onnx": {"data": "model.onnx", "onnx_version": "1.23.2"}}})
    )
    (folder / "model.onnx").write_bytes(bytes([0x08, 0x0A]) + b"\x3a\x00")
    return folder


def test_auto_prefers_an_engine_that_serves_and_explains(tmp_path: Path) -> None:
    # scikit-learn 1.5 with code_paths: sklearnserver loses the code; MLServer (scikit-learn
    # 1.5.2, Python 3.10) loads it through MLflow with its code.
    folder = tmp_path / "model"
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "custom.py").write_text("X = 1\n")
    (folder / "model.pkl").write_bytes(pickle.dumps({"not": "a model, never loaded"}))
    conf = {"pickled_model": "model.pkl", "sklearn_version": "1.5.2"}
    conf["serialization_format"] = "cloudpickle"
    pyfunc = {"loader_module": "mlflow.sklearn", "python_version": "3.10.12", "code": "code"}
    (folder / "MLmodel").write_text(
        yaml.safe_dump({"flavors": {"sklearn": conf, "python_function": pyfunc}})
    )
    done = run_cli("detect", str(folder), "--output", "json")
    assert done.code == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["engine"] == "mlflow" and data["compatibility"]["status"] == "ok"
    assert data["choice"].startswith("auto chose mlflow (kserve-mlserver, ok) over sklearn")
    assert "code_paths" in data["choice"]
    explicit = run_cli("detect", str(folder), "--predictor", "sklearn", "--output", "json")
    assert json.loads(explicit.stdout)["engine"] == "sklearn"


def test_step_inputs(tmp_path: Path) -> None:
    env = {
        "FUSEML_MODEL": "s3://b/m",
        "FUSEML_APP_NAME": "iris",
        "FUSEML_RUNTIME_LIBRARIES": "scikit-learn==1.9.1",
        "FUSEML_ALLOW_INCOMPATIBLE": "true",
    }
    settings = settings_from_env(env, tmp_path)
    assert settings.runtime_libraries == "scikit-learn==1.9.1" and settings.allow_incompatible
    assert not settings_from_env(
        {**env, "FUSEML_ALLOW_INCOMPATIBLE": ""}, tmp_path
    ).allow_incompatible


def test_the_test_cluster_seeds_unknown_images(cluster: Cluster) -> None:
    images = {
        r["spec"]["containers"][0]["image"]
        for r in cluster.api.list_objects("clusterservingruntimes")  # type: ignore[attr-defined]
    }
    assert all(i.endswith(":simulated") for i in images) and seed_simulated_runtimes
