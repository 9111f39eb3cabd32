"""The FuseML REST client against a real FuseML API test server on loopback (no mocks)."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator

import pytest
from conftest import free_port
from servers.fuseml_api import FuseMLServer

from kserve_predictor.errors import FuseMLError, UsageError
from kserve_predictor.fuseml.client import Application, FuseMLClient
from kserve_predictor.retry import RetryPolicy


def quick(attempts: int = 0) -> RetryPolicy:
    """Small delays: retries are exercised without slowing the suite down."""
    return RetryPolicy(seconds=5, first_delay=0.01, read_timeout=5, attempts=attempts)


PASSWORD = "pa55word"


def app(name: str = "proj-code-wf", **changes: str) -> Application:
    fields = {
        "name": name,
        "url": f"http://{name}.default.example.com/v2/models/{name}/infer",
        "workflow": "wf",
        "k8s_namespace": "fuseml-workloads",
        "description": "an MLflow model served by KServe",
        **changes,
    }
    return Application(
        **fields,
        k8s_resources=[
            {"name": name, "kind": "InferenceService"},
            {"name": f"{name}-s3", "kind": "Secret"},
        ],
    )


@pytest.fixture
def server() -> Iterator[FuseMLServer]:
    with FuseMLServer() as s:
        yield s


@pytest.fixture
def client(server: FuseMLServer) -> FuseMLClient:
    return FuseMLClient(server.url, retry=quick(attempts=4))


def posts(server: FuseMLServer) -> int:
    return sum(1 for method, _, _ in server.requests_log if method == "POST")


def test_register_get_list_delete_round_trip(server: FuseMLServer, client: FuseMLClient) -> None:
    stored = client.register(app())
    assert stored == app().as_body()
    assert server.applications == {"proj-code-wf": app().as_body()}
    client.register(app("other", workflow="wf2"))

    assert client.get("proj-code-wf") == app().as_body()
    assert client.get("missing") is None
    assert [a["name"] for a in client.list()] == ["other", "proj-code-wf"]
    assert [a["name"] for a in client.list(workflow="wf2")] == ["other"]
    assert [a["name"] for a in client.list(type="predictor", workflow="wf")] == ["proj-code-wf"]
    assert client.list(type="notebook") == []

    assert client.delete("proj-code-wf") is True
    assert client.get("proj-code-wf") is None
    assert list(server.applications) == ["other"]


def test_as_body_matches_the_contract() -> None:
    body = app().as_body()
    assert set(body) == {
        "name",
        "type",
        "description",
        "url",
        "workflow",
        "k8s_namespace",
        "k8s_resources",
    }
    assert body["type"] == "predictor"
    assert body["k8s_resources"][0] == {"name": "proj-code-wf", "kind": "InferenceService"}


def test_register_upserts(server: FuseMLServer, client: FuseMLClient) -> None:
    client.register(app())
    new_url = "http://proj-code-wf.default.example.com/v1/models/proj-code-wf:predict"
    stored = client.register(app(url=new_url))
    assert stored["url"] == new_url
    assert len(server.applications) == 1
    assert server.applications["proj-code-wf"]["url"] == new_url


def test_missing_field_is_rejected_with_the_servers_message(
    server: FuseMLServer, client: FuseMLClient
) -> None:
    with pytest.raises(FuseMLError) as info:
        client.register(app(k8s_namespace=""))
    message = str(info.value)
    assert "rejected the application" in message
    assert "missing required field 'k8s_namespace'" in message
    assert "400" in message and server.url in message
    assert "\n" not in message
    assert server.applications == {}
    assert posts(server) == 1  # a 400 is not retried


def test_503s_are_retried_transparently(server: FuseMLServer, client: FuseMLClient) -> None:
    server.fail_next(503, times=2, method="POST")
    assert client.register(app())["name"] == "proj-code-wf"
    assert posts(server) == 3
    assert "proj-code-wf" in server.applications


def test_persistent_503_fails_in_bounded_time(server: FuseMLServer, client: FuseMLClient) -> None:
    server.fail_next(503, times=100)
    started = time.monotonic()
    with pytest.raises(FuseMLError) as info:
        client.register(app())
    assert time.monotonic() - started < 5
    assert posts(server) == 4  # attempts
    message = str(info.value)
    assert "HTTP 503" in message and "injected failure" in message and server.url in message


def test_retries_stop_at_the_time_budget(server: FuseMLServer) -> None:
    # The first retry would sleep 5 to 10 s; a 1 s budget forbids it.
    client = FuseMLClient(server.url, retry=RetryPolicy(seconds=1, first_delay=10, attempts=5))
    server.fail_next(500, times=100)
    started = time.monotonic()
    with pytest.raises(FuseMLError, match="HTTP 500"):
        client.get("x")
    assert time.monotonic() - started < 3
    assert len(server.requests_log) == 1


def test_dropped_connection_is_retried(server: FuseMLServer, client: FuseMLClient) -> None:
    server.drop_next()
    client.register(app())
    assert posts(server) == 2
    assert "proj-code-wf" in server.applications


def test_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = FuseMLClient(url, retry=quick(attempts=2))
    with pytest.raises(FuseMLError) as info:
        client.register(app())
    message = str(info.value)
    assert "nothing answers" in message and url in message and "FUSEML_SERVER_URL" in message


def test_credentials_never_appear_in_messages(
    server: FuseMLServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = server.url.rsplit(":", 1)[1]
    client = FuseMLClient(f"http://user:{PASSWORD}@127.0.0.1:{port}", retry=quick())
    dead = FuseMLClient(f"http://user:{PASSWORD}@127.0.0.1:{free_port()}", retry=quick(attempts=1))

    # The credentials still reach the server, as Basic auth.
    client.register(app())
    expected = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert server.headers_log[-1].get("Authorization") == expected

    messages = []
    server.fail_next(400)
    with pytest.raises(FuseMLError) as info:
        client.register(app())
    messages.append(str(info.value))
    server.fail_next(503, times=100)
    for call in (lambda: client.get("x"), client.ping, dead.ping, lambda: dead.delete("x")):
        with pytest.raises(FuseMLError) as info:
            call()
        messages.append(str(info.value))
    with pytest.raises(UsageError) as usage:
        FuseMLClient(f"ftp://user:{PASSWORD}@127.0.0.1/")
    messages.append(str(usage.value))

    assert all(f"127.0.0.1:{port}" in m for m in messages[:3]), messages
    for text in [*messages, caplog.text]:
        assert PASSWORD not in text and "user:" not in text, text


def test_delete_of_an_absent_application(server: FuseMLServer, client: FuseMLClient) -> None:
    assert client.delete("never-registered") is False
    assert server.requests_log == [("DELETE", "/applications/never-registered", None)]


def test_ping(server: FuseMLServer, client: FuseMLClient) -> None:
    client.ping()
    assert server.requests_log == [("GET", "/applications?type=predictor", None)]

    server.fail_next(500, times=100)
    with pytest.raises(FuseMLError) as info:
        client.ping()
    assert "HTTP 500" in str(info.value) and "FUSEML_SERVER_URL" in str(info.value)


def test_ping_of_an_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FuseMLError) as info:
        FuseMLClient(url, retry=quick(attempts=1)).ping()
    message = str(info.value)
    assert "nothing answers" in message and url in message and "FUSEML_SERVER_URL" in message


def test_ping_of_something_that_is_not_fuseml(server: FuseMLServer) -> None:
    # A URL with a wrong path prefix: the server answers 404 to the preflight.
    client = FuseMLClient(server.url + "/not-fuseml", retry=quick(attempts=1))
    with pytest.raises(FuseMLError, match=r"HTTP 404.*FUSEML_SERVER_URL"):
        client.ping()


def test_get_with_a_name_that_needs_quoting(server: FuseMLServer, client: FuseMLClient) -> None:
    assert client.get("a/b c") is None
    assert server.requests_log[-1][1] == "/applications/a%2Fb%20c"


@pytest.mark.parametrize("url", ["", "fuseml-core:80", "ftp://fuseml", "http://", "localhost"])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(UsageError, match=r"is not an http\(s\) URL") as info:
        FuseMLClient(url)
    assert info.value.exit_code == 2
