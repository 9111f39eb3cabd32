"""A FuseML core API test server (DESIGN.md §2) on 127.0.0.1, in a background thread.

It serves the Applications API the step uses:

- ``POST /applications``: register or replace by name; 201 with the stored object, 400 with an
  ``{"error": ...}`` body naming the field when a required field is missing or empty, or when
  ``k8s_resources`` is not a list of ``{name, kind}``;
- ``GET /applications[?type=&workflow=]``: the stored objects, filtered, sorted by name;
- ``GET /applications/{name}``: one object, 404 if absent;
- ``DELETE /applications/{name}``: 204, 404 if absent.

Tests inspect ``applications`` and ``requests_log`` and inject faults with ``fail_next`` (an
error status) and ``drop_next`` (the connection closed without an answer).
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .tracking_http import ServerInThread, TrackingHTTPServer, serve_in_thread, shut_down

REQUIRED = ("name", "type", "url", "workflow", "k8s_namespace")
Obj = dict[str, Any]


@dataclass
class _Fault:
    status: int | None  # None: drop the connection
    times: int
    method: str | None  # None: any method


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _validate(body: Any) -> Obj:
    """The object to store for a POST body; _HttpError(400) naming the first bad field."""
    if not isinstance(body, dict):
        raise _HttpError(400, "the request body must be a JSON object")
    for key in REQUIRED:
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _HttpError(400, f"missing required field {key!r}")
    description = body.get("description", "")
    if not isinstance(description, str):
        raise _HttpError(400, "field 'description' must be a string")
    resources = body.get("k8s_resources", [])
    if not isinstance(resources, list):
        raise _HttpError(400, "field 'k8s_resources' must be a list of {name, kind}")
    for i, resource in enumerate(resources):
        if not isinstance(resource, dict) or not all(
            isinstance(resource.get(k), str) and resource[k] for k in ("name", "kind")
        ):
            raise _HttpError(400, f"k8s_resources[{i}] must be an object with name and kind")
    stored = {key: body[key] for key in REQUIRED}
    stored["description"] = description
    stored["k8s_resources"] = [{"name": r["name"], "kind": r["kind"]} for r in resources]
    return stored


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        api = self.server.api
        fault = api.take_fault(self.command, self.path, body, dict(self.headers))
        if fault is not None and fault.status is None:
            # No answer at all: the client sees the connection closed.
            self.close_connection = True
            return
        try:
            if fault is not None:
                assert fault.status is not None
                raise _HttpError(fault.status, f"injected failure: HTTP {fault.status}")
            status, answer = api.dispatch(self.command, self.path, body)
        except _HttpError as e:
            status, answer = e.status, {"error": e.message}
        self.send_response(status)
        if status == 204:
            self.end_headers()
            return
        data = json.dumps(answer).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Api:
    """The server's state; every method holds the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.applications: dict[str, Obj] = {}
        self.requests_log: list[tuple[str, str, Any]] = []
        self.headers_log: list[dict[str, str]] = []
        self.faults: list[_Fault] = []

    def take_fault(
        self, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> _Fault | None:
        """Log the request and consume the first fault that matches it."""
        with self.lock:
            self.requests_log.append((method, path, body))
            self.headers_log.append(headers)
            for fault in self.faults:
                if fault.method in (None, method):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def dispatch(self, method: str, target: str, body: Any) -> tuple[int, Any]:
        parts = urlsplit(target)
        segments = parts.path.strip("/").split("/")
        if segments[0] != "applications" or len(segments) > 2:
            raise _HttpError(404, f"no such path: {parts.path}")
        with self.lock:
            if len(segments) == 1:
                if method == "GET":
                    query = parse_qs(parts.query)
                    wanted = {k: query[k][0] for k in ("type", "workflow") if k in query}
                    return 200, [
                        copy.deepcopy(app)
                        for _, app in sorted(self.applications.items())
                        if all(app[k] == v for k, v in wanted.items())
                    ]
                if method == "POST":
                    app = _validate(body)
                    self.applications[app["name"]] = app
                    return 201, copy.deepcopy(app)
            else:
                name = unquote(segments[1])
                if method in ("GET", "DELETE") and name not in self.applications:
                    raise _HttpError(404, f"application {name!r} not found")
                if method == "GET":
                    return 200, copy.deepcopy(self.applications[name])
                if method == "DELETE":
                    del self.applications[name]
                    return 204, None
        raise _HttpError(405, f"{method} is not allowed on {parts.path}")


class _HttpServer(TrackingHTTPServer):
    api: _Api

    def __init__(self, address: tuple[str, int], api: _Api) -> None:
        super().__init__(address, _Handler, api)


class FuseMLServer(ServerInThread):
    """The FuseML Applications API on 127.0.0.1 (port 0: any free port).

    ``start()`` returns the base URL; also usable as a context manager.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._api = _Api()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        if self._httpd is None:
            self._httpd = _HttpServer(self._address, self._api)
            self._thread = serve_in_thread(self._httpd, "fuseml-api")
        return self.url

    def stop(self) -> None:
        if self._httpd is None:
            return
        shut_down(self._httpd, self._thread)
        self._httpd = None

    @property
    def applications(self) -> dict[str, Obj]:
        """A copy of the stored Applications, by name."""
        with self._api.lock:
            return copy.deepcopy(self._api.applications)

    @property
    def requests_log(self) -> list[tuple[str, str, Any]]:
        """Every request received, faulted ones included: (method, path with query, JSON body)."""
        with self._api.lock:
            return list(self._api.requests_log)

    @property
    def headers_log(self) -> list[dict[str, str]]:
        """The headers of every request, in the order of ``requests_log``."""
        with self._api.lock:
            return list(self._api.headers_log)

    def fail_next(self, status: int, times: int = 1, method: str | None = None) -> None:
        """Answer the next ``times`` requests (of ``method`` only, if given) with ``status`` and
        an ``{"error": ...}`` body."""
        self._add_fault(_Fault(status, times, method.upper() if method else None))

    def clear_faults(self) -> None:
        """Forget every injected failure not yet used: the server has recovered."""
        with self._api.lock:
            self._api.faults.clear()

    def drop_next(self, times: int = 1) -> None:
        """Close the connection of the next ``times`` requests without answering."""
        self._add_fault(_Fault(None, times, None))

    def _add_fault(self, fault: _Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        with self._api.lock:
            self._api.faults.append(fault)
