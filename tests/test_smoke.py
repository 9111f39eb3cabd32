"""The smoke test after Ready: a network that cannot reach the service is a warning, only a
wrong answer fails; in a pod the cluster-local address is used."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import Cluster, S3Server, free_port, run_cli, step_env

from kserve_predictor.modelserver.smoke import (
    MAX_EXAMPLE_BYTES,
    SmokeResult,
    SmokeTestFailed,
    Unreachable,
    send,
)

NS = "fuseml-workloads"


def warnings(stderr: str) -> list[str]:
    """The smoke test's warnings (the compatibility check warns apart about the simulated
    runtime images, which its table does not know)."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("WARNING") and "compatibility warning" not in line
    ]


def test_a_default_install_ends_with_the_url_the_registration_and_a_warning(
    s3: S3Server, s3_model, cluster: Cluster, fuseml, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """status.url under example.com does not resolve from here: the step still succeeds."""
    cluster.controller.default_install = True  # type: ignore[attr-defined]
    results = tmp_path / "results"
    env = step_env(s3, cluster, fuseml, s3_model("sklearn_pickle"), results, FUSEML_APP_NAME="iris")
    done = run_cli("run", env=env)
    assert done.code == 0, done.stderr
    url = f"http://iris-{NS}.example.com/v1/models/iris:predict"
    assert done.stdout.strip() == url
    assert (results / "prediction-url").read_text() == url
    assert fuseml.applications["iris"]["url"] == url
    [warning] = warnings(done.stderr)
    assert "smoke test skipped" in warning and f"iris-{NS}.example.com does not resolve" in warning
    assert f"curl -H 'Host: iris-{NS}.example.com'" in warning
    assert "http://$INGRESS_HOST:$INGRESS_PORT/v1/models/iris:predict" in warning
    assert "kubectl get svc -n istio-system istio-ingressgateway" in warning


def test_in_a_pod_the_cluster_local_address_is_used_and_answered(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:  # type: ignore[no-untyped-def]
    cluster.controller.default_install = True  # type: ignore[attr-defined]
    env = {**s3.env, "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    done = run_cli(
        "deploy", "--model", s3_model("sklearn_pickle"), "--app-name", "iris",
        "--kubeconfig", str(cluster.kubeconfig), "--output", "json", env=env,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["smoke_test_ms"] > 0  # answered, through address.url (loopback here)
    assert result["prediction_url"] == "http://iris-default.example.com/v1/models/iris:predict"
    assert warnings(done.stderr) == []


def test_an_input_example_too_large_to_send_is_skipped_with_a_warning(
    s3: S3Server, s3_model, cluster: Cluster, bucket: str
) -> None:  # type: ignore[no-untyped-def]
    url = s3_model("sklearn_pickle")
    rows = [[5.1, 3.5, 1.4, 0.2]] * (MAX_EXAMPLE_BYTES // 20)
    key = url.removeprefix(f"s3://{bucket}/") + "/input_example.json"
    s3.client().put_object(Bucket=bucket, Key=key, Body=json.dumps({"data": rows}).encode())
    done = run_cli(
        "deploy", "--model", url, "--app-name", "big", "--output", "json",
        env={**s3.env, "KUBECONFIG": str(cluster.kubeconfig)},
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["smoke_test_ms"] is None
    [warning] = warnings(done.stderr)
    assert "input example" in warning and f"more than the {MAX_EXAMPLE_BYTES}" in warning


# --- send(): what counts as a wrong answer, and what as a network that cannot reach ------------


@pytest.fixture
def answering() -> Iterator[dict[str, object]]:
    """A loopback HTTP server answering what the test puts in ``reply`` (status, body)."""
    reply: dict[str, object] = {"status": 200, "body": b"{}"}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = reply["body"]
            assert isinstance(body, bytes)
            self.send_response(int(str(reply["status"])))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    reply["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1/models/m:predict"
    yield reply
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "protocol", "needle"),
    [
        (500, b'{"error": "boom"}', "v1", "answered HTTP 500"),
        (404, b'{"error": "Model with name m does not exist."}', "v1", "answered HTTP 404"),
        (200, b'{"predictions": [1]}', "v1", "answered 1 predictions for 2 example rows"),
        (200, b"<html>gateway</html>", "v1", "not JSON"),
        (200, b'{"outputs": "nope"}', "v2", "answered None predictions"),
        (200, b"[1, 2]", "v1", "answered None predictions"),
    ],
)
def test_a_wrong_answer_fails(
    answering: dict[str, object], status: int, body: bytes, protocol: str, needle: str
) -> None:
    answering.update(status=status, body=body)
    with pytest.raises(SmokeTestFailed, match=needle):
        send(str(answering["url"]), {"instances": [[1], [2]]}, 2, protocol)


def test_a_right_answer_passes(answering: dict[str, object]) -> None:
    answering["body"] = b'{"outputs": [{"name": "y", "shape": [2], "data": [0, 1]}]}'
    result = send(str(answering["url"]), {"inputs": []}, 2, "v2")
    assert isinstance(result, SmokeResult) and result.rows == 2 and result.latency_ms > 0


def test_refused_unresolvable_and_silent_are_unreachable() -> None:
    refused = send(f"http://127.0.0.1:{free_port()}/v1/models/m:predict", {}, 1, "v1")
    assert refused == Unreachable(refused.url, "connection refused")  # type: ignore[union-attr]
    unresolvable = send("http://iris-default.example.invalid/v1/models/m:predict", {}, 1, "v1")
    assert isinstance(unresolvable, Unreachable)
    assert unresolvable.reason == "iris-default.example.invalid does not resolve"
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        quiet = send(f"http://127.0.0.1:{port}/v1/models/m:predict", {}, 1, "v1", timeout=0.5)
    assert isinstance(quiet, Unreachable) and quiet.reason == "timed out"
