"""KServe's serving options: each as a flag, a FUSEML_<NAME> variable and a bad value, and the
InferenceService each produces, checked against the real CRD (and KServe's webhook rules) by
the Kubernetes API test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Cluster, S3Server, codeset, run_cli, step_env

from kserve_predictor.errors import UsageError
from kserve_predictor.interfaces.step import settings_from_env
from kserve_predictor.settings.serving import NAMES, ServingOptions, from_env, parse

NS = "default"

# option -> (flag value, where it lands in the InferenceService, the value stored there)
OPTIONS: dict[str, tuple[str, tuple[str, ...], Any]] = {
    "canary_traffic_percent": ("10", ("spec", "predictor", "canaryTrafficPercent"), 10),
    "min_replicas": ("0", ("spec", "predictor", "minReplicas"), 0),
    "max_replicas": ("4", ("spec", "predictor", "maxReplicas"), 4),
    "scale_target": ("5", ("spec", "predictor", "scaleTarget"), 5),
    "scale_metric": ("rps", ("spec", "predictor", "scaleMetric"), "rps"),
    "autoscaler_class": (
        "keda",
        ("metadata", "annotations", "serving.kserve.io/autoscalerClass"),
        "keda",
    ),
    "deployment_mode": (
        "Serverless",  # the legacy name, written under its current one
        ("metadata", "annotations", "serving.kserve.io/deploymentMode"),
        "Knative",
    ),
    "protocol": ("v2", ("spec", "predictor", "model", "protocolVersion"), "v2"),
    "logger": (
        "http://dumper.default.svc.cluster.local",
        ("spec", "predictor", "logger"),
        {"url": "http://dumper.default.svc.cluster.local", "mode": "all"},
    ),
    "request_timeout": ("30", ("spec", "predictor", "timeout"), 30),
    "container_concurrency": ("8", ("spec", "predictor", "containerConcurrency"), 8),
    "node_selector": (
        "{pool: gpu-a100}",
        ("spec", "predictor", "nodeSelector"),
        {"pool": "gpu-a100"},
    ),
    "tolerations": (
        '[{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]',
        ("spec", "predictor", "tolerations"),
        [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    ),
    "gpu": ("2", ("spec", "predictor", "model", "resources", "limits", "nvidia.com/gpu"), "2"),
    "overlay": (
        "{spec: {predictor: {priorityClassName: high}}}",
        ("spec", "predictor", "priorityClassName"),
        "high",
    ),
}
# options that need another one beside them
COMPANIONS = {"logger_mode": ["--logger", "http://dumper.default.svc.cluster.local"]}

BAD: dict[str, str] = {
    "canary_traffic_percent": "101",
    "min_replicas": "-1",
    "max_replicas": "0",
    "scale_target": "zero",
    "scale_metric": "gpu",
    "autoscaler_class": "kpa",
    "deployment_mode": "ModelMesh",
    "protocol": "grpc-v1",
    "logger": "ftp://dumper",
    "logger_mode": "everything",
    "request_timeout": "0",
    "container_concurrency": "-2",
    "node_selector": "[a, b]",
    "tolerations": "[{key: x, operator: Exists, value: y}]",
    "gpu": "1.5",
    "overlay": "{metadata: {name: other}}",
}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def at(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def env_for(s3: S3Server, cluster: Cluster) -> dict[str, str]:
    return {**s3.env, "KUBECONFIG": str(cluster.kubeconfig)}


def nothing_written(cluster: Cluster, namespace: str = NS) -> None:
    for plural in ("inferenceservices", "secrets", "serviceaccounts"):
        assert cluster.api.list_objects(plural, namespace) == []  # type: ignore[attr-defined]


def dry_run(s3: S3Server, cluster: Cluster, url: str, *extra: str) -> Any:
    return run_cli(
        "deploy", "--model", url, "--app-name", "iris", "--dry-run", *extra,
        env=env_for(s3, cluster),
    )  # fmt: skip


def planned_isvc(stdout: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(stdout) if d]
    return next(d for d in docs if d["kind"] == "InferenceService")


def test_every_option_is_covered_here() -> None:
    assert set(OPTIONS) | set(COMPANIONS) == set(NAMES) == set(BAD)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_each_flag_lands_in_a_manifest_the_cluster_accepts(
    s3: S3Server, s3_model, cluster: Cluster, name: str
) -> None:
    # The dry run applies the InferenceService to the API test server (CRD schema, KServe's
    # webhook rules): exit 0 means the manifest is one a cluster takes.
    value, path, stored = OPTIONS[name]
    extra = [flag(name), value]
    if name == "scale_metric":  # rps is a Knative metric: KServe's webhook checks that pairing
        extra += ["--deployment-mode", "Knative"]
    if name == "autoscaler_class":
        extra += ["--deployment-mode", "Standard"]
    done = dry_run(s3, cluster, s3_model("sklearn_pickle"), *extra)
    assert done.code == 0, done.stderr
    assert at(planned_isvc(done.stdout), path) == stored
    assert f"# {name}: " in done.stdout  # the plan names it
    nothing_written(cluster)


def test_logger_mode_and_the_gpu_preset(s3: S3Server, s3_model, cluster: Cluster) -> None:
    done = dry_run(
        s3, cluster, s3_model("sklearn_pickle"),
        "--logger", "http://dumper.default.svc.cluster.local", "--logger-mode", "response",
        "--gpu", "1", "--tolerations", "{key: nvidia.com/gpu, operator: Exists}",
    )  # fmt: skip
    assert done.code == 0, done.stderr
    predictor = planned_isvc(done.stdout)["spec"]["predictor"]
    assert predictor["logger"]["mode"] == "response"
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # A toleration the user gave for the GPU taint is kept, not doubled.
    assert predictor["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]

    done = dry_run(s3, cluster, s3_model("sklearn_pickle"), "--gpu", "1")
    assert planned_isvc(done.stdout)["spec"]["predictor"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_flag_is_one_line_exit_2_and_nothing_written(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str, name: str
) -> None:
    done = dry_run(
        s3, cluster, s3_model("sklearn_pickle"), flag(name), BAD[name], *COMPANIONS.get(name, [])
    )
    assert done.code == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert flag(name) in lines[0]
    nothing_written(cluster)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_each_fuseml_variable_sets_the_same_option(name: str, tmp_path: Path) -> None:
    value = OPTIONS[name][0]
    env = {"FUSEML_MODEL": "s3://bucket/model", f"FUSEML_{name.upper()}": value}
    got = settings_from_env(env, workdir=tmp_path).options
    assert got == parse({name: value}) and getattr(got, name) is not None


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_fuseml_variable_names_the_variable(name: str) -> None:
    env = {f"FUSEML_{name.upper()}": BAD[name], "FUSEML_LOGGER": "http://dumper"}
    if name == "logger":
        env["FUSEML_LOGGER"] = BAD[name]
    with pytest.raises(UsageError, match=f"FUSEML_{name.upper()}"):
        from_env(env)


def test_nothing_set_is_the_defaults() -> None:
    assert from_env({}) == ServingOptions()
    assert from_env({"FUSEML_MIN_REPLICAS": "  "}) == ServingOptions()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_replicas": "3", "max_replicas": "2"}, "is below"),
        ({"deployment_mode": "Standard", "canary_traffic_percent": "10"}, "needs Knative"),
        ({"deployment_mode": "RawDeployment", "min_replicas": "0"}, "keeps at least 1"),
        ({"deployment_mode": "Knative", "autoscaler_class": "hpa"}, "Standard mode only"),
        ({"deployment_mode": "Standard", "scale_metric": "rps"}, "not an HPA metric"),
        ({"deployment_mode": "Knative", "scale_metric": "cpu"}, "not a Knative metric"),
        (
            {"deployment_mode": "Standard", "autoscaler_class": "keda", "scale_metric": "cpu"},
            "KEDA",
        ),
        ({"scale_metric": "cpu", "scale_target": "150"}, "1-100"),
        ({"logger_mode": "all"}, "needs --logger"),
        ({"tolerations": "{operator: Equal, value: x}"}, "operator must be Exists"),
        ({"tolerations": "{key: a, effect: NoSchedule, tolerationSeconds: 5}"}, "NoExecute"),
        ({"tolerations": "{key: a, operator: Exists, effect: Sometimes}"}, "effect"),
        ({"tolerations": "{key: a, color: blue}"}, "not a toleration field"),
        ({"node_selector": "{'bad key!': x}"}, "not a node label"),
        ({"overlay": "{kind: Pod}"}, "may not change kind"),
        ({"overlay": "{metadata: {namespace: other}}"}, "metadata.namespace"),
        ({"overlay": "[1, 2]"}, "not a mapping"),
        ({"overlay": "{metadata: {labels: {fuseml/workflow: other}}}"}, "records the owner"),
    ],
)
def test_rules_between_options(values: dict[str, str], message: str) -> None:
    flags = {name: value for name, value in values.items()}
    with pytest.raises(UsageError, match=message):
        parse(flags, lambda name: "--" + name.replace("_", "-"))


def test_overlay_merges_last_and_a_field_the_crd_lacks_is_refused_before_any_write(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str
) -> None:
    url = s3_model("sklearn_pickle")
    done = dry_run(
        s3, cluster, url, "--min-replicas", "1",
        "--overlay", '{"spec": {"predictor": {"minReplicas": 2, "model": {"resources": '
        '{"requests": null}}}}, "metadata": {"labels": {"team": "ml"}}}',
    )  # fmt: skip
    assert done.code == 0, done.stderr
    isvc = planned_isvc(done.stdout)
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] == 2  # the overlay wins over the flag
    assert predictor["model"]["resources"] == {"limits": {"cpu": "1", "memory": "2Gi"}}  # null
    assert isvc["metadata"]["labels"]["team"] == "ml"
    assert isvc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kserve-predictor"

    done = run_cli(
        "deploy", "--model", url, "--app-name", "iris",
        "--overlay", "{spec: {predictor: {replicaCount: 3}}}",
        env=env_for(s3, cluster),
    )  # fmt: skip
    assert done.code == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "--overlay" in errors[0], done.stderr
    assert "spec.predictor.replicaCount" in errors[0]
    nothing_written(cluster)
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any("/kserve/" in k for k in keys)  # no upload either


def test_overlay_with_a_wrong_typed_value_gets_the_crd_422(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:
    done = dry_run(
        s3, cluster, s3_model("sklearn_pickle"),
        "--overlay", "{spec: {predictor: {logger: {mode: everything}}}}",
    )  # fmt: skip
    assert done.code == 2, done.stderr
    assert "spec.predictor.logger.mode" in done.stderr
    nothing_written(cluster)


def test_grpc_v2_for_triton_and_refused_for_a_runtime_without_it(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:
    done = dry_run(s3, cluster, s3_model("onnx"), "--protocol", "grpc-v2", "--output", "json")
    assert done.code == 0, done.stderr
    import json

    data = json.loads(done.stdout)
    assert data["protocol"] == "grpc-v2"
    isvc = next(m for m in data["manifests"] if m["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["model"]["protocolVersion"] == "grpc-v2"

    done = dry_run(s3, cluster, s3_model("sklearn_pickle"), "--protocol", "grpc-v2")
    assert done.code == 2 and "--predictor triton" in done.stderr, done.stderr
    nothing_written(cluster)


def test_mode_is_read_back_and_a_change_is_refused_before_any_write(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:
    url = s3_model("sklearn_pickle")
    env = env_for(s3, cluster)
    base = ("deploy", "--model", url, "--app-name", "iris", "--no-smoke-test")
    done = run_cli(*base, "--deployment-mode", "Standard", "--min-replicas", "1", env=env)
    assert done.code == 0, done.stderr
    api = cluster.api
    before = api.get_object("inferenceservices", NS, "iris")  # type: ignore[attr-defined]
    assert before["status"]["deploymentMode"] == "Standard"
    assert before["spec"]["predictor"]["minReplicas"] == 1

    shown = run_cli("status", "iris", "--target", "kserve", "--output", "json", env=env)
    assert shown.code == 0, shown.stderr
    import json

    assert json.loads(shown.stdout)["deployment_mode"] == "Standard"

    changed = run_cli(*base, "--deployment-mode", "Knative", env=env)
    assert changed.code == 2, changed.stderr
    assert "Standard mode" in changed.stderr and "new --app-name" in changed.stderr
    # The recorded mode also rules what the options may ask without naming a mode.
    canary = run_cli(*base, "--canary-traffic-percent", "10", env=env)
    assert canary.code == 2 and "needs Knative mode" in canary.stderr, canary.stderr
    after = api.get_object("inferenceservices", NS, "iris")  # type: ignore[attr-defined]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_the_test_servers_copy_kserve_on_mode_and_autoscaler(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:
    """What KServe itself refuses, in case the product's own checks are bypassed (overlay)."""
    url = s3_model("sklearn_pickle")
    env = env_for(s3, cluster)
    overlay = "{metadata: {annotations: {serving.kserve.io/autoscalerClass: kpa}}}"
    done = dry_run(s3, cluster, url, "--overlay", overlay)
    assert done.code != 0 and "is not a supported autoscaler class type" in done.stderr
    done = dry_run(s3, cluster, url, "--scale-metric", "cpu")  # no mode: Knative rules
    assert done.code != 0 and "[cpu] is not a supported metric" in done.stderr, done.stderr
    nothing_written(cluster)
    # A default-mode service records the configmap default (Knative) as KServe does.
    done = run_cli("deploy", "--model", url, "--app-name", "iris", "--no-smoke-test", env=env)
    assert done.code == 0, done.stderr
    isvc = cluster.api.get_object("inferenceservices", NS, "iris")  # type: ignore[attr-defined]
    assert isvc["status"]["deploymentMode"] == "Knative"
    overlay = "{metadata: {annotations: {serving.kserve.io/deploymentMode: Standard}}}"
    done = dry_run(s3, cluster, url, "--overlay", overlay)
    assert done.code != 0
    assert "deploymentMode cannot be changed from 'Knative' to 'Standard'" in done.stderr


def test_step_deploys_with_fuseml_variables(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:
    url = s3_model("sklearn_pickle")
    env = step_env(
        s3, cluster, fuseml, url, tmp_path / "results",
        FUSEML_APP_NAME="iris", FUSEML_DEPLOYMENT_MODE="Knative", FUSEML_MIN_REPLICAS="0",
        FUSEML_MAX_REPLICAS="3", FUSEML_CANARY_TRAFFIC_PERCENT="100",
        FUSEML_REQUEST_TIMEOUT="20", FUSEML_NODE_SELECTOR='{"pool": "cpu"}',
    )  # fmt: skip
    workdir = codeset(tmp_path)
    done = run_cli("run", env=env, cwd=workdir)
    assert done.code == 0, done.stderr
    isvc = cluster.api.get_object("inferenceservices", "fuseml-workloads", "iris")  # type: ignore[attr-defined]
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 3)
    assert predictor["canaryTrafficPercent"] == 100 and predictor["timeout"] == 20
    assert predictor["nodeSelector"] == {"pool": "cpu"}
    assert isvc["status"]["deploymentMode"] == "Knative"

    bad = {**env, "FUSEML_APP_NAME": "iris2", "FUSEML_SCALE_METRIC": "gpu"}
    done = run_cli("run", env=bad, cwd=workdir)
    assert done.code == 2 and "FUSEML_SCALE_METRIC" in done.stderr, done.stderr
    assert cluster.api.get_object("inferenceservices", "fuseml-workloads", "iris2") is None  # type: ignore[attr-defined]


def test_the_simulation_records_the_mode_before_the_service_is_ready(cluster: Cluster) -> None:
    # KServe writes status.deploymentMode on every reconcile, a failed one too; a legacy
    # annotation is recorded under its current name.
    api: Any = cluster.api
    api.put_object(
        "inferenceservices",
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": "nothing-serves",
                "namespace": NS,
                "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
            },
            "spec": {"predictor": {"model": {"modelFormat": {"name": "no-such-format"}}}},
        },
    )
    assert api.wait_for_callbacks()
    status = api.get_object("inferenceservices", NS, "nothing-serves")["status"]
    assert status["conditions"][-1]["reason"] == "NoSupportingRuntime"
    assert status["deploymentMode"] == "Standard"


def test_serving_options_are_refused_for_the_local_target(zoo: Path, tmp_path: Path) -> None:
    done = run_cli(
        "deploy", "--target", "local", "--model", str(zoo / "sklearn_pickle"),
        "--app-name", "iris", "--min-replicas", "2",
    )  # fmt: skip
    assert done.code == 2, done.stderr
    assert "--min-replicas applies to --target kserve only" in done.stderr
