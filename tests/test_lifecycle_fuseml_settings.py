"""status and delete reach FuseML with the settings deploy uses (issue 22's defect): here a
FuseML server over TLS with a self-signed certificate, trusted only through
KSERVE_PREDICTOR_FUSEML_VERIFY_TLS=false."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cluster, run_cli
from servers.fuseml_api import FuseMLServer, _HttpServer
from servers.tracking_http import serve_in_thread

from kserve_predictor.fuseml.client import Application, FuseMLClient

NS = "default"
ONE_TRY = "0.2"  # seconds of retrying: shorter than the first pause


class _TlsFuseML(FuseMLServer):
    """The FuseML API test server behind TLS with ``context``'s certificate."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context

    def start(self) -> str:
        self._httpd = _HttpServer(self._address, self._api)
        self._httpd.socket = self._context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = serve_in_thread(self._httpd, "fuseml-api-tls")
        return self.url

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"https://{host!s}:{port}"


@pytest.fixture
def tls_fuseml(tmp_path: Path) -> Iterator[_TlsFuseML]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _TlsFuseML(context)
    server.start()
    yield server
    server.stop()


def _service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://m/model"}
            }
        },
    }


def _registered(cluster: Cluster, fuseml_url: str, name: str) -> str:
    """An InferenceService ``name`` and its FuseML Application, as a deploy leaves them; returns
    the Application's URL."""
    url = f"http://{name}.default.example.com/v1/models/{name}:predict"
    FuseMLClient(fuseml_url, verify_tls=False).register(
        Application(name=name, url=url, workflow="wf", k8s_namespace=NS)
    )
    cluster.api.put_object("inferenceservices", _service(name))  # type: ignore[attr-defined]
    return url


def test_status_and_delete_use_the_fuseml_tls_setting(
    cluster: Cluster, tls_fuseml: _TlsFuseML, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CA-bundle variables are the subject of the test below, not of this one.
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    url = _registered(cluster, tls_fuseml.url, "tls-app")
    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "FUSEML_SERVER_URL": tls_fuseml.url,
        "KSERVE_PREDICTOR_FUSEML_VERIFY_TLS": "false",
    }

    status = run_cli("status", "tls-app", "-n", NS, "--output", "json", env=env)
    assert "error" not in status.stderr, status.stderr
    assert json.loads(status.stdout)["fuseml"] == url

    deleted = run_cli("delete", "tls-app", "-n", NS, "--force", env=env)
    assert deleted.code == 0, deleted.stderr
    assert "FuseML application tls-app" in deleted.stdout
    assert "tls-app" not in tls_fuseml.applications

    # Verified (the default), the self-signed certificate is refused, by every command alike.
    _registered(cluster, tls_fuseml.url, "tls-app")
    verified = {**env, "KSERVE_PREDICTOR_FUSEML_VERIFY_TLS": "true"}
    refused = run_cli("status", "tls-app", "-n", NS, env=verified)
    assert refused.code != 0 and "certificate" in refused.stderr.lower(), refused.stderr


def test_status_and_delete_use_the_retry_setting(cluster: Cluster, fuseml: Any) -> None:
    """KSERVE_PREDICTOR_RETRY_SECONDS bounds FuseML's retries for status and delete as for
    deploy: ONE_TRY leaves no time for a second try (the first pause is 0.25 s or more,
    retry.RetryPolicy), so a passing 503 is the answer; the default outlasts it."""
    url = _registered(cluster, fuseml.url, "retry-app")
    env = {"KUBECONFIG": str(cluster.kubeconfig), "FUSEML_SERVER_URL": fuseml.url}

    fuseml.fail_next(503, times=1, method="GET")
    once = run_cli(
        "status", "retry-app", "-n", NS, env={**env, "KSERVE_PREDICTOR_RETRY_SECONDS": ONE_TRY}
    )
    assert once.code != 0 and "503" in once.stderr, once.stderr

    fuseml.fail_next(503, times=2, method="GET")
    retried = run_cli("status", "retry-app", "-n", NS, "--output", "json", env=env)
    assert "error" not in retried.stderr, retried.stderr  # exit 1: the service is not ready
    assert json.loads(retried.stdout)["fuseml"] == url

    fuseml.fail_next(503, times=1, method="DELETE")
    refused = run_cli(
        "delete",
        "retry-app",
        "-n",
        NS,
        "--force",
        env={**env, "KSERVE_PREDICTOR_RETRY_SECONDS": ONE_TRY},
    )
    assert refused.code != 0 and "503" in refused.stderr, refused.stderr
    fuseml.fail_next(503, times=1, method="DELETE")
    deleted = run_cli("delete", "retry-app", "-n", NS, "--force", env=env)
    assert deleted.code == 0, deleted.stderr
    assert "retry-app" not in fuseml.applications


def test_a_refused_certificate_is_said_at_once(tls_fuseml: _TlsFuseML) -> None:
    """A certificate that fails verification fails every try alike: the one retry policy (for
    Kubernetes, S3 and FuseML) raises it at the first, even where the client calls every
    connection error transient, as FuseML's does."""
    import requests

    from kserve_predictor.retry import RetryPolicy

    tries = []

    def attempt(timeouts: tuple[float, float]) -> None:
        tries.append(timeouts)
        requests.get(f"{tls_fuseml.url}/applications", timeout=timeouts)

    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        RetryPolicy(seconds=30).call("GET /applications", attempt, lambda error: True)
    assert len(tries) == 1


def test_the_tls_opt_out_holds_beside_a_ca_bundle_variable(
    cluster: Cluster, tls_fuseml: _TlsFuseML, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE (set on many machines, this one included) must not undo
    KSERVE_PREDICTOR_FUSEML_VERIFY_TLS=false: requests lets it override a session's
    verify=False, so the client says verify on every request."""
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    url = _registered(cluster, tls_fuseml.url, "bundle-app")
    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "FUSEML_SERVER_URL": tls_fuseml.url,
        "KSERVE_PREDICTOR_FUSEML_VERIFY_TLS": "false",
        "REQUESTS_CA_BUNDLE": certifi.where(),
    }
    status = run_cli("status", "bundle-app", "-n", NS, "--output", "json", env=env)
    assert "error" not in status.stderr, status.stderr
    assert json.loads(status.stdout)["fuseml"] == url
