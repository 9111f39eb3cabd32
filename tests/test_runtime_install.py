"""The runtime object (deploy/kserve-predictor-mlflow.yaml), `install-runtime`, the `pyfunc`
engine, and the step deploying with it end to end: the KServe controller simulation runs the
runtime's container command when an InferenceService names it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import requests
import yaml
from conftest import Cluster, S3Server, codeset, run_cli, step_env

from kserve_predictor import __version__
from kserve_predictor.engines.own_runtime import IMAGE, NAME
from kserve_predictor.kserve.runtime_manifest import serving_runtime

ROOT = Path(__file__).resolve().parent.parent
STOCK = ROOT.parent / "shared" / "kserve" / "runtimes" / "kserve-sklearnserver.yaml"
NAMESPACE = "fuseml-workloads"


# --- the manifest --------------------------------------------------------------------------


def test_the_file_in_deploy_is_the_manifest_of_this_version() -> None:
    from runtime_process import MANIFEST

    assert yaml.safe_load(MANIFEST.read_text()) == serving_runtime()
    assert f"ghcr.io/fuseml/kserve-predictor-runtime:{__version__}" == IMAGE


@pytest.mark.parametrize(
    ("namespace", "plural"), [(None, "clusterservingruntimes"), ("team-a", "servingruntimes")]
)
def test_the_manifest_is_valid_under_kserves_crd(namespace: str | None, plural: str) -> None:
    from servers.k8s_api import CRD_DIR, validate_against_crd

    if not (CRD_DIR / f"serving.kserve.io_{plural}.yaml").is_file():
        pytest.skip(f"../shared/kserve/crd/serving.kserve.io_{plural}.yaml is absent")
    runtime = serving_runtime(namespace)
    assert runtime["kind"] == ("ServingRuntime" if namespace else "ClusterServingRuntime")
    assert runtime["metadata"].get("namespace") == namespace
    assert validate_against_crd(runtime, plural) == []
    broken = copy.deepcopy(runtime)  # the validator is really looking
    broken["spec"]["supportedModelFormats"][0]["autoSelect"] = "no"
    assert validate_against_crd(broken, plural) != []


def test_the_manifest_never_captures_other_models_and_runs_like_the_stock_servers() -> None:
    runtime = serving_runtime()
    spec = runtime["spec"]
    assert spec["supportedModelFormats"] == [
        {"name": "mlflow", "version": v, "autoSelect": False} for v in ("1", "2", "3")
    ]
    assert spec["protocolVersions"] == ["v1", "v2"]
    (container,) = spec["containers"]
    stock = yaml.safe_load(STOCK.read_text())["spec"]["containers"][0]
    # KServe's template variables, exactly as its own sklearn server takes them
    assert container["args"] == stock["args"]
    assert container["securityContext"] == stock["securityContext"]
    assert container["resources"]["limits"] and container["resources"]["requests"]
    # the install prefix is a writable emptyDir, where the runtime is told to install
    env = {e["name"]: e["value"] for e in container["env"]}
    (mount,) = container["volumeMounts"]
    assert env["KSERVE_PREDICTOR_PACKAGES_DIR"] == mount["mountPath"]
    assert env["KSERVE_PREDICTOR_INSTALL"] == "auto"
    assert spec["volumes"] == [{"name": mount["name"], "emptyDir": {}}]


# --- install-runtime and the presence check ---------------------------------------------------


def test_install_runtime_cluster_wide_then_namespaced_and_idempotent(cluster: Cluster) -> None:
    from kserve_predictor.kserve.connection import connect
    from kserve_predictor.ops.runtime_install import runtime_installed
    from kserve_predictor.settings.groups import ClusterSettings

    api = cluster.api
    client = connect(ClusterSettings(str(cluster.kubeconfig)))
    assert runtime_installed(client, "default") is False

    done = run_cli("install-runtime", "--kubeconfig", str(cluster.kubeconfig))
    assert done.code == 0, done.stderr
    assert "installed ClusterServingRuntime kserve-predictor-mlflow (cluster-wide)" in done.stdout
    stored = api.get_object("clusterservingruntimes", None, NAME)  # type: ignore[attr-defined]
    assert stored["spec"]["containers"][0]["image"] == IMAGE
    assert stored["spec"] == serving_runtime()["spec"]  # nothing pruned by the API server
    assert runtime_installed(client, "default") is True
    version = stored["metadata"]["resourceVersion"]
    assert run_cli("install-runtime", "--kubeconfig", str(cluster.kubeconfig)).code == 0
    again = api.get_object("clusterservingruntimes", None, NAME)  # type: ignore[attr-defined]
    assert again["metadata"]["resourceVersion"] == version  # server-side apply: no change

    api.delete_object("clusterservingruntimes", None, NAME)  # type: ignore[attr-defined]
    done = run_cli(
        "install-runtime", "--namespace", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig)
    )
    assert done.code == 0, done.stderr
    assert api.get_object("servingruntimes", NAMESPACE, NAME)  # type: ignore[attr-defined]
    assert runtime_installed(client, NAMESPACE) is True
    assert runtime_installed(client, "default") is False


def test_an_unreadable_cluster_runtime_is_unknown_not_absent(cluster: Cluster) -> None:
    """Without the ClusterRole the cluster-scoped runtimes cannot be listed: unknown, not absent
    (the compatibility check then warns instead of refusing)."""
    from kserve_predictor.kserve.connection import connect
    from kserve_predictor.ops.runtime_install import runtime_installed
    from kserve_predictor.settings.groups import ClusterSettings

    cluster.api.forbidden.add(("list", "clusterservingruntimes"))  # type: ignore[attr-defined]
    client = connect(ClusterSettings(str(cluster.kubeconfig)))
    assert runtime_installed(client, NAMESPACE) is None


# --- the engine, and the step end to end -----------------------------------------------------

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
APP = "mlflow-project-01-iris-codese-cf6621"  # the default name, shortened for its namespace


def test_the_inference_service_names_the_runtime() -> None:
    from servers.k8s_api import validate_against_crd

    from kserve_predictor.engines import ENGINES
    from kserve_predictor.errors import UsageError
    from kserve_predictor.kserve import manifests

    spec = manifests.ServiceSpec("iris", "default", ENGINES["pyfunc"], "s3://b/m/kserve/pyfunc/")
    model = manifests.inference_service(spec)["spec"]["predictor"]["model"]
    assert model["runtime"] == NAME
    assert model["modelFormat"] == {"name": "mlflow"} and model["protocolVersion"] == "v1"
    assert validate_against_crd(manifests.inference_service(spec)) == []
    legacy = manifests.ServiceSpec(
        "iris", "default", ENGINES["pyfunc"], "s3://b/m/", style=manifests.LEGACY_STYLE
    )
    with pytest.raises(UsageError):
        manifests.inference_service(legacy)


@pytest.mark.parametrize("predictor", ["pyfunc", "auto"])
def test_without_the_runtime_the_step_refuses_with_the_install_command(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path, bucket: str, predictor: str
) -> None:
    """A skops model (MLflow's default) has no stock runtime: explicit pyfunc and auto both
    refuse before any write, naming the install command."""
    url = s3_model("sklearn_skops")
    env = step_env(s3, cluster, fuseml, url, tmp_path / "r", FUSEML_PREDICTOR=predictor)
    done = run_cli("run", env=env, cwd=codeset(tmp_path))
    assert done.code == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    if predictor == "pyfunc":
        assert line.startswith("error: the kserve-predictor-mlflow runtime is not installed")
    else:
        assert "skops" in line and "kserve-predictor's own runtime" in line
    assert "`kserve-predictor install-runtime`" in line
    # nothing half-made: no objects, no converted layout, no registration
    assert cluster.api.list_objects("inferenceservices", NAMESPACE) == []  # type: ignore[attr-defined]
    assert cluster.api.list_objects("secrets", NAMESPACE) == []  # type: ignore[attr-defined]
    prefix = url.split(bucket + "/", 1)[1] + "/kserve/"
    assert s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount") == 0
    assert fuseml.applications == {}


@pytest.mark.slow
@pytest.mark.parametrize("predictor", ["pyfunc", "auto"])
@pytest.mark.parametrize("model", ["sklearn_skops", "pyfunc"])
def test_the_step_deploys_with_the_runtime_and_answers_as_mlflow(
    s3: S3Server,
    s3_model,
    cluster: Cluster,
    fuseml,
    tmp_path: Path,
    zoo: Path,
    model: str,
    predictor: str,
) -> None:
    """With the runtime installed, `auto` picks it for what no stock runtime serves correctly
    (skops sklearn; a custom pyfunc pickled under Python 3.11, which MLServer's 3.10 cannot
    load), exactly as `--predictor pyfunc` does."""
    from test_runtime import reference

    assert run_cli("install-runtime", "--kubeconfig", str(cluster.kubeconfig)).code == 0
    url = s3_model(model)
    env = step_env(s3, cluster, fuseml, url, tmp_path / "r", FUSEML_PREDICTOR=predictor)
    done = run_cli("run", env=env, cwd=codeset(tmp_path))
    assert done.code == 0, done.stderr
    prediction_url = done.stdout.strip()
    assert prediction_url.endswith(f"/v1/models/{APP}:predict")
    isvc = cluster.api.get_object("inferenceservices", NAMESPACE, APP)  # type: ignore[attr-defined]
    implementation = isvc["spec"]["predictor"]["model"]
    assert implementation["runtime"] == NAME
    assert implementation["storageUri"].startswith(f"{url}/kserve/pyfunc-")
    assert implementation["storageUri"].endswith("/")
    assert fuseml.applications[APP]["url"] == prediction_url

    answer = requests.post(prediction_url, json={"instances": ROWS}, timeout=60)
    assert answer.status_code == 200, answer.text
    columns = yaml.safe_load((zoo / model / "input_example.json").read_text())["columns"]
    expected = reference(zoo / model, {"columns": columns, "data": ROWS}, None)
    assert answer.json() == {"predictions": pytest.approx(expected)}


# --- the image ---------------------------------------------------------------------------------


def test_the_runtime_image_targets() -> None:
    from test_packaging import parse_dockerfile

    stages = {s.name: s for s in parse_dockerfile() if s.name}
    runtime, tensorflow = stages["runtime"], stages["runtime-tensorflow"]
    (install,) = [r for r in runtime.all("RUN") if "pip install" in r]
    assert "[serve]" in install and "--no-cache-dir" in install  # mlflow, sklearn, skops, ...
    assert runtime.all("ENTRYPOINT") == ['["kserve-predictor-runtime"]']
    assert runtime.all("USER")[-1] == "10001:10001" == tensorflow.all("USER")[-1]
    assert runtime.env()["KSERVE_PREDICTOR_PACKAGES_DIR"] == "/mnt/packages"
    assert tensorflow.base == "runtime"
    assert any("tensorflow-cpu" in r for r in tensorflow.all("RUN"))
    assert parse_dockerfile()[-1].name == "step"  # the last stage: the default target
    from kserve_predictor.engines.own_runtime import IMAGE_PYTHON

    assert runtime.base == "python:{}.{}-slim".format(*IMAGE_PYTHON)
