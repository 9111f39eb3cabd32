"""Configuration errors name the input, and commands never claim what they could not check.

A kubeconfig that cannot be used is named with what is wrong in it; `status` and `delete` with
`--target auto` report a cluster they could not read instead of "nothing to delete" (unless a
local deployment of that name settles it); a refused or unresolvable first contact with the
Kubernetes API, S3 or FuseML fails at once, naming the address and where it came from, while
a system that answered once and then went away is retried.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import Cluster, S3Server, free_port, run_cli
from servers.fuseml_api import FuseMLServer

from kserve_predictor.errors import FuseMLError
from kserve_predictor.fuseml.client import FuseMLClient
from kserve_predictor.retry import RetryPolicy

ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": "iris",
        "namespace": "default",
        "labels": {"app.kubernetes.io/managed-by": "kserve-predictor"},
    },
    "spec": {
        "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://b/m"}}
    },
}


def kubeconfig(tmp_path: Path, server: str, **changes: object) -> Path:
    """A kubeconfig for ``server`` (context and cluster "test"), with top-level ``changes``."""
    document: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "t"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
        **changes,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


def one_error(done, code: int) -> str:  # type: ignore[no-untyped-def]
    """The command failed with ``code`` and one `error:` line, no traceback; that line."""
    assert done.code == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stdout == "", done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return str(errors[0])


def plugin_user(tmp_path: Path, command: str) -> list[dict[str, object]]:
    exec_config = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": command}
    return [{"name": "test", "user": {"exec": exec_config}}]


# --- 5. kubeconfig errors name the file and what is wrong ---------------------------------


def test_kubeconfig_problems_name_the_file_and_the_problem(tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    absent = tmp_path / "absent" / "config"
    failing = tmp_path / "failing-plugin"
    failing.write_text("#!/bin/sh\necho 'token expired, log in again' >&2\nexit 3\n")
    failing.chmod(0o755)
    cases = [
        # (flags, environment, kubeconfig maker, expected parts of the error)
        ([], {"KUBECONFIG": str(absent)}, None, [f"kubeconfig {absent} (KUBECONFIG) does not exist"]),
        (["--kubeconfig", str(absent)], {}, None, [f"kubeconfig {absent} (--kubeconfig) does not exist"]),
        ([], {}, lambda: _write(tmp_path, "clusters: [\n"), ["(KUBECONFIG) is not YAML at line 2"]),
        ([], {}, lambda: _write(tmp_path, "- a list\n"), ["is not a kubeconfig"]),
        ([], {}, lambda: kubeconfig(tmp_path, server, **{"current-context": ""}),
         ["has no current-context", "contexts: test"]),
        ([], {}, lambda: kubeconfig(tmp_path, server, **{"current-context": "prod"}),
         ["its current-context 'prod' is not among its contexts (test)"]),
        (["--context", "tset"], {}, lambda: kubeconfig(tmp_path, server),
         ["--context 'tset' is not in kubeconfig", "contexts: test"]),
        ([], {}, lambda: kubeconfig(tmp_path, server, users=plugin_user(tmp_path, "no-such-kp-plugin")),
         ["context 'test': the credentials plugin (exec) of user 'test' failed",
          "no-such-kp-plugin"]),
        ([], {}, lambda: kubeconfig(tmp_path, server, users=plugin_user(tmp_path, str(failing))),
         ["the credentials plugin (exec) of user 'test' failed", "token expired, log in again"]),
        ([], {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, None,
         ["in-cluster Kubernetes configuration (KUBERNETES_SERVICE_HOST='10.0.0.1'",
          "token file does not exist"]),
    ]  # fmt: skip
    for flags, env, make, expected in cases:
        if make is not None:
            env = {**env, "KUBECONFIG": str(make())}
        for command in (["status", "iris", "--target", "kserve"], ["delete", "iris"]):
            error = one_error(run_cli(*command, *flags, env=env), 2)
            for part in expected:
                assert part in error, (command, flags, error)
            path = env.get("KUBECONFIG", "")
            assert path in error or "in-cluster" in error, error


def _write(tmp_path: Path, text: str, name: str = "broken-kubeconfig") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- 4. status and delete never claim what they could not check --------------------------


def test_auto_target_reports_a_cluster_it_cannot_read(tmp_path: Path, cluster: Cluster) -> None:
    cluster.api.put_object("inferenceservices", ISVC)  # type: ignore[attr-defined]
    broken = _write(tmp_path, "clusters: [\n")
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(
        cluster.kubeconfig.read_text().replace(
            cluster.api.url,  # type: ignore[attr-defined]
            f"http://127.0.0.1:{free_port()}",
        )
    )
    good = {"KUBECONFIG": str(cluster.kubeconfig)}
    for flags, env, code, needle in (
        ([], {"KUBECONFIG": str(broken)}, 2, f"kubeconfig {broken} (KUBECONFIG) is not YAML"),
        ([], {"KUBECONFIG": str(tmp_path / "nowhere")}, 2, "(KUBECONFIG) does not exist"),
        (["--context", "prod"], good, 2, "--context 'prod' is not in kubeconfig"),
        ([], {"KUBECONFIG": str(unreachable)}, 1, "nothing answers at the Kubernetes API"),
    ):
        deleted = run_cli("delete", "iris", *flags, env=env)
        assert needle in one_error(deleted, code)
        status = run_cli("status", "iris", *flags, env=env)
        assert needle in one_error(status, code)
    assert cluster.api.get_object("inferenceservices", "default", "iris") is not None  # type: ignore[attr-defined]
    # Only "not found" on a cluster that answered means there is nothing to delete.
    assert run_cli("delete", "iris", env=good).code == 0
    again = run_cli("delete", "iris", env=good)
    assert again.code == 0 and "nothing named iris to delete" in again.stdout, again.stderr


def stale_local_app(home: Path, name: str) -> None:
    """A local deployment's record whose server is no longer running."""
    apps = home / "apps"
    apps.mkdir(parents=True)
    (apps / f"{name}.json").write_text(
        json.dumps(
            {"name": name, "pid": 999999, "host": "127.0.0.1", "port": 1, "engine": "sklearn",
             "protocol": "v1", "model": "/m", "folder": "/f", "log": str(home / "x.log"),
             "prediction_url": f"http://127.0.0.1:1/v1/models/{name}:predict", "started": 0}
        )
    )  # fmt: skip


def test_a_local_deployment_settles_auto_when_the_cluster_cannot_be_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stale_local_app(home, "iris")
    env = {"KSERVE_PREDICTOR_HOME": str(home), "KUBECONFIG": str(_write(tmp_path, "{]"))}
    status = run_cli("status", "iris", "--output", "json", env=env)
    assert json.loads(status.stdout)["target"] == "local", status.stderr
    # ... but a mistyped --context is an error everywhere, a local deployment or not.
    (tmp_path / "good").mkdir()
    good = kubeconfig(tmp_path / "good", "http://127.0.0.1:1")
    typo = run_cli("delete", "iris", "--context", "tset", env={**env, "KUBECONFIG": str(good)})
    assert "--context 'tset' is not in kubeconfig" in one_error(typo, 2)
    assert (home / "apps" / "iris.json").exists()
    deleted = run_cli("delete", "iris", env=env)
    assert deleted.code == 0 and "deleted local server iris" in deleted.stdout, deleted.stderr
    assert "the cluster was not checked" in deleted.stderr


def test_without_any_kubernetes_configuration_auto_means_local_only(tmp_path: Path) -> None:
    env = {"KSERVE_PREDICTOR_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    deleted = run_cli("delete", "iris", env=env)  # KUBECONFIG unset, no ~/.kube/config
    assert deleted.code == 0 and "nothing named iris to delete" in deleted.stdout
    assert "only local deployments were looked at: no Kubernetes configuration" in deleted.stderr
    status = run_cli("status", "iris", env=env)
    assert "no local deployment named iris, and no cluster" in one_error(status, 2)
    kserve = run_cli("delete", "iris", "--target", "kserve", env=env)
    assert "KUBECONFIG is unset and ~/.kube/config does not exist" in one_error(kserve, 2)


# --- 5. a first contact that is refused or unresolvable fails at once ----------------------


@pytest.mark.parametrize(
    ("server", "reason"),
    [("http://127.0.0.1:{port}", "connection refused"), ("http://kp.invalid:6443", "not resolved")],
)
def test_a_kubernetes_api_that_never_answered_is_not_retried(
    tmp_path: Path, server: str, reason: str
) -> None:
    address = server.format(port=free_port())
    path = kubeconfig(tmp_path, address)
    # A budget long enough that a retry would show in the debug log (and not hang the test).
    env = {"KUBECONFIG": str(path), "KSERVE_PREDICTOR_RETRY_SECONDS": "4"}
    done = run_cli("status", "iris", "--target", "kserve", "-v", env=env)
    error = one_error(done, 1)
    assert f"nothing answers at the Kubernetes API address {address}" in error
    assert f"from kubeconfig {path} (KUBECONFIG), context 'test'" in error and reason in error
    assert "retrying" not in done.stderr


def test_an_s3_endpoint_that_never_answered_is_not_retried(s3: S3Server) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {**s3.env, "MLFLOW_S3_ENDPOINT_URL": endpoint, "KSERVE_PREDICTOR_RETRY_SECONDS": "4"}
    done = run_cli("detect", "s3://bucket/model", "-v", env=env)
    error = one_error(done, 1)
    assert f"nothing answers at S3 endpoint {endpoint} (from MLFLOW_S3_ENDPOINT_URL)" in error
    assert "connection refused" in error and "retrying" not in done.stderr


def test_a_fuseml_server_that_never_answered_is_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kserve_predictor")
    url = f"http://127.0.0.1:{free_port()}"
    client = FuseMLClient(url, retry=RetryPolicy(seconds=4, first_delay=0.01))
    with pytest.raises(FuseMLError) as info:
        client.ping()
    message = str(info.value)
    assert f"nothing answers at the FuseML server at {url} (from FUSEML_SERVER_URL)" in message
    assert "connection refused" in message and "retrying" not in caplog.text


def test_a_fuseml_server_that_answered_once_is_retried_when_it_goes_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kserve_predictor")
    port = free_port()
    first = FuseMLServer(port=port)
    first.start()
    client = FuseMLClient(first.url, retry=RetryPolicy(seconds=30, first_delay=0.1, max_delay=0.5))
    assert client.list() == []
    first.stop()  # now the port refuses connections: a restart, not a wrong address
    second = FuseMLServer(port=port)
    restart = threading.Timer(1.0, second.start)
    restart.start()
    try:
        assert client.get("iris") is None  # answered by the restarted server
    finally:
        restart.join()
        second.stop()
    assert "retrying" in caplog.text


def test_the_policy_retries_refusals_only_after_an_answer() -> None:
    from kserve_predictor.retry import Contact

    calls = []

    def refused(_timeout: tuple[float, float]) -> None:
        calls.append(time.monotonic())
        raise ConnectionRefusedError(111, "Connection refused")

    policy = RetryPolicy(seconds=10, first_delay=0.01, max_delay=0.01, attempts=3)
    contact = Contact()
    with pytest.raises(ConnectionRefusedError):
        policy.call("x", refused, lambda e: True, contact=contact)
    assert len(calls) == 1 and not contact.answered
    assert policy.call("x", lambda _t: "ok", lambda e: True, contact=contact) == "ok"
    assert contact.answered
    calls.clear()
    with pytest.raises(ConnectionRefusedError):
        policy.call("x", refused, lambda e: True, contact=contact)
    assert len(calls) == 3  # it answered before: the refusals are retried
