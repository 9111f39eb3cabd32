"""deploy/rbac.yaml, measured: the step's runs against an API server that enforces that Role
(as RBAC does, in its one namespace) use exactly the verbs it grants, no more and no less."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    Cluster,
    LocalRuntimes,
    S3Server,
    codeset,
    run_cli,
    seed_simulated_runtimes,
    step_env,
)

from kserve_predictor.kserve.client import USER_AGENT

ROOT = Path(__file__).parent.parent
NS = "fuseml-workloads"
STEP_USER = f"system:serviceaccount:{NS}:staging-triggers-admin"


def step_role() -> Any:
    """deploy/rbac.yaml's Role and its one ClusterRole (bound cluster-wide there)."""
    from servers.k8s_api import Role

    documents = [d for d in yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()) if d]
    (role,) = [d for d in documents if d["kind"] == "Role"]
    (cluster_role,) = [d for d in documents if d["kind"] == "ClusterRole"]
    return Role.from_manifest(role, cluster_role)


@pytest.fixture
def rbac_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The cluster fixture, with the step's identity bound to deploy/rbac.yaml's Role and
    ClusterRole only."""
    from servers.k8s_api import KubeApiServer, crd_available
    from servers.kserve_controller import KServeController

    if not crd_available():
        pytest.skip("../shared/kserve/crd/serving.kserve.io_inferenceservices.yaml is absent")
    missing: set[str] = set()
    api = KubeApiServer(namespaces=("default", NS), user=STEP_USER, role=step_role())
    api.start()
    seed_simulated_runtimes(api)
    runtimes = LocalRuntimes()
    controller = KServeController(
        api, runtimes, image_exists=lambda image: image not in missing
    ).attach()
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
    yield Cluster(api, controller, kubeconfig, missing)
    api.stop()
    runtimes.close()
    controller.close()


def test_the_role_grants_exactly_what_the_step_uses(
    s3: S3Server, s3_model, rbac_cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster, work = rbac_cluster, codeset(tmp_path)
    env = step_env(
        s3, cluster, fuseml, s3_model("sklearn_pickle"), tmp_path / "r", FUSEML_APP_NAME="iris"
    )
    # every path of the step: create, re-run, status, a failure diagnosed from the pods, delete
    assert run_cli("run", env=env, cwd=work).code == 0
    assert run_cli("run", env=env, cwd=work).code == 0
    cli_env = {"KUBECONFIG": str(cluster.kubeconfig)}
    assert run_cli("status", "iris", "--target", "kserve", env=cli_env).code == 0
    cluster.missing_images.add("kserve/sklearnserver:v9.9.9-missing")
    pull = run_cli(
        "run",
        env={**env, "FUSEML_APP_NAME": "pull", "FUSEML_RUNTIME_VERSION": "v9.9.9-missing"},
        cwd=work,
    )
    assert pull.code == 1 and "ImagePullBackOff" in pull.stderr
    for name in ("iris", "pull"):
        assert run_cli("delete", name, "--target", "kserve", env=cli_env).code == 0

    requests = [r for r in cluster.api.requests if r.user_agent.startswith(USER_AGENT)]  # type: ignore[attr-defined]
    used = {access for r in requests if r.status != 403 for access in r.access}
    granted = step_role().grants()
    assert used - granted == set(), "the step needs more than deploy/rbac.yaml grants"
    assert granted - used == set(), "deploy/rbac.yaml grants verbs the step never uses"
    refused = {access for r in requests if r.status == 403 for access in r.access}
    assert refused == {("", "namespaces", "get")}  # cluster-scoped: tried, and not needed


def test_a_namespace_this_identity_cannot_see_is_named_so(
    s3: S3Server, s3_model, rbac_cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = step_env(
        s3,
        rbac_cluster,
        fuseml,
        s3_model("sklearn_pickle"),
        tmp_path / "r",
        FUSEML_APP_NAME="iris",
        FUSEML_ENV_WORKFLOW_NAMESPACE="no-such-namespace",
    )
    done = run_cli("run", env=env, cwd=codeset(tmp_path))
    assert done.code == 2
    assert (
        "namespace 'no-such-namespace' does not exist or this identity cannot see it" in done.stderr
    )
    assert "permission denied" not in done.stderr
    assert rbac_cluster.api.list_objects("inferenceservices") == []  # type: ignore[attr-defined]
