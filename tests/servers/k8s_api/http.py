"""The HTTP side: the API's entry point (authentication, injected faults, routing to a verb,
Status errors, the request records) and the handler that moves bytes."""

from __future__ import annotations

import json
import logging
import select
import socket
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..tracking_http import TrackingHTTPServer
from .discovery import _Discovery, _resource_list_doc, _version_doc
from .errors import ApiError, _page_not_found, status_body
from .handlers import _Handlers
from .request import Request, RequestRecord, Response, Stream, _Target
from .resources import (
    CLUSTER_SERVING_RUNTIMES,
    INFERENCE_SERVICES,
    KSERVE_GROUP,
    NAMESPACES,
    PODS,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVING_RUNTIMES,
    Obj,
    ResourceType,
)
from .storage import _Key, _Store
from .watch import AbruptClose

_log = logging.getLogger(__name__)


@dataclass
class _Fault:
    method: str
    path_substring: str
    status: int
    times: int
    message: str | None
    reason: str | None
    retry_after: int | None
    watch: bool | None = None  # only watch requests (True), only others (False), or any


# --------------------------------------------------------------------------------------------
# The API: entry point and routing (the verbs: handlers.py; writes: registry.py)


class _Api(_Handlers, _Discovery):
    """Everything a request needs; the HTTP layer only moves bytes."""

    def __init__(self, owner: Any, history_size: int) -> None:
        self.server = owner
        self.store = _Store(history_size, owner._on_event)
        self.write_counts: Counter[_Key] = Counter()
        self.faults: list[_Fault] = []
        self.records: list[RequestRecord] = []
        self.watch_epoch = 0
        self.abrupt_drop = False
        self.frozen = False
        self.active_watches = 0
        self.stopping = False
        self.served = self._served_types()

    def _served_types(self) -> dict[tuple[str, str], list[ResourceType]]:
        served = {("", "v1"): [NAMESPACES, SECRETS, SERVICE_ACCOUNTS, PODS]}
        if self.server.inference_service_api:
            served[(KSERVE_GROUP, "v1beta1")] = [INFERENCE_SERVICES]
        if self.server.serving_runtime_api:
            served[(KSERVE_GROUP, "v1alpha1")] = [SERVING_RUNTIMES, CLUSTER_SERVING_RUNTIMES]
        return served

    # ---- entry point

    def handle(self, request: Request) -> Response | Stream:
        self._wait_while_frozen(request)
        try:
            self._authenticate(request)
            self._inject_fault(request)
            result = self._route(request)
        except ApiError as err:
            result = Response(err.code, err.status, err.headers)
        except Exception as err:  # a server bug must still answer like a server
            _log.exception("k8s test server failed on %s %s", request.method, request.path)
            result = Response(500, status_body(500, "InternalError", f"test server error: {err}"))
        status = result.status if isinstance(result, Response) else 200
        record = RequestRecord(
            request.method,
            request.path,
            dict(request.query),
            status,
            request.headers.get("content-type"),
            tuple(request.access),
            request.headers.get("user-agent", ""),
        )
        with self.store.cond:
            self.records.append(record)
        return result

    def _wait_while_frozen(self, request: Request) -> None:
        """A frozen server reads requests and never answers them (the connection stays open)
        until it thaws or stops, like an API server whose etcd stopped answering."""
        with self.store.cond:
            while self.frozen and not self.stopping and not request.client_gone():
                self.store.cond.wait(0.25)

    def _authenticate(self, request: Request) -> None:
        token = self.server.token
        if token and request.headers.get("authorization") != f"Bearer {token}":
            raise ApiError(401, "Unauthorized")

    def _inject_fault(self, request: Request) -> None:
        with self.store.cond:
            fault = next((f for f in self.faults if _fault_matches(f, request)), None)
            if fault is None:
                return
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
        message = fault.message or f"injected failure for {request.method} {request.path}"
        headers = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
        raise ApiError(fault.status, message, reason=fault.reason, headers=headers)

    # ---- routing

    def _route(self, request: Request) -> Response | Stream:
        parts = [part for part in request.path.split("/") if part]
        if parts == ["version"]:
            return Response(200, _version_doc())
        if parts[:1] == ["api"]:
            if len(parts) == 1:
                return Response(200, self._core_versions_doc(request))
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"]:
            if len(parts) == 1:
                return Response(200, self._group_list_doc())
            if len(parts) == 2:
                return Response(200, self._group_doc(parts[1]))
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _page_not_found()
        types = self.served.get((group, version))
        if types is None:
            raise _page_not_found()
        if not rest:
            return Response(200, _resource_list_doc(group, version, types))
        return self._serve(request, _resolve_target(types, rest))

    def _serve(self, request: Request, target: _Target) -> Response | Stream:
        verb = _verb(request, target)
        self._authorize(request, verb, target)
        handlers: dict[str, Callable[[Request, _Target], Response | Stream]] = {
            "get": self._get,
            "list": self._list,
            "watch": self._watch,
            "create": self._create,
            "update": self._replace,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
        }
        return handlers[verb](request, target)


def _resolve_target(types: list[ResourceType], rest: list[str]) -> _Target:
    by_plural = {rt.plural: rt for rt in types}
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in by_plural:
        rt, namespace, tail = by_plural[rest[2]], rest[1], rest[3:]
        if not rt.namespaced:
            raise _page_not_found()
    elif rest[0] in by_plural:
        rt, namespace, tail = by_plural[rest[0]], None, rest[1:]
        if rt.namespaced and tail:
            raise _page_not_found()
    else:
        raise _page_not_found()
    if len(tail) > 2 or (len(tail) == 2 and not (tail[1] == "status" and rt.status_subresource)):
        raise _page_not_found()
    name = tail[0] if tail else None
    return _Target(rt, namespace, name, tail[1] if len(tail) == 2 else None)


def _verb(request: Request, target: _Target) -> str:
    method = request.method
    if target.name is None:
        verbs = {
            "GET": "watch" if request.flag("watch") else "list",
            "POST": "create",
            "DELETE": "deletecollection",
        }
    else:
        verbs = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method not in verbs or (target.subresource and verbs[method] == "delete"):
        raise ApiError(405, "the server does not allow this method on the requested resource")
    return verbs[method]


def _fault_matches(fault: _Fault, request: Request) -> bool:
    method_ok = fault.method in ("*", request.method.upper())
    kind_ok = fault.watch is None or fault.watch == request.flag("watch")
    return method_ok and kind_ok and fault.path_substring in request.path


# --------------------------------------------------------------------------------------------
# HTTP


class _HttpServer(TrackingHTTPServer):
    api: _Api

    def __init__(self, address: tuple[str, int], api: _Api) -> None:
        super().__init__(address, _Handler, api)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watch streams
    # Headers and body leave in separate writes; without this, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every request on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=url.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            client_gone=self._peer_closed,
        )
        response = self.server.api.handle(request)
        if isinstance(response, Stream):
            self._send_stream(response.events)
        else:
            self._send_json(response)

    def _send_json(self, response: Response) -> None:
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers:
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. frozen)
            self.close_connection = True

    def _send_stream(self, events: Generator[Obj, None, None]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                self._write_chunk(json.dumps(event).encode() + b"\n")
            self._write_chunk(b"")
        except AbruptClose:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            events.close()  # runs the watch's cleanup when the client went away mid-stream

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _peer_closed(self) -> bool:
        """True once the client hung up (a readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
