"""The HTTP server both API test servers run on: threaded, keeping track of its open
connections so that stopping it also cuts keep-alive connections a client still holds."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class TrackingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], api: Any
    ) -> None:
        self.api = api
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads idling on keep-alive connections so they exit."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


def serve_in_thread(httpd: TrackingHTTPServer, name: str) -> threading.Thread:
    """Serve ``httpd`` from a daemon thread (short poll interval: quick, clean shutdowns)."""
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True
    )
    thread.start()
    return thread


def shut_down(httpd: TrackingHTTPServer, thread: threading.Thread | None) -> None:
    """Stop serving, cut kept-alive connections, release the port, join the thread."""
    httpd.shutdown()
    httpd.close_connections()
    httpd.server_close()
    if thread is not None:
        thread.join(timeout=5)


def base_url(httpd: TrackingHTTPServer | None) -> str:
    if httpd is None:
        raise RuntimeError("the server is not started")
    host, port = httpd.server_address[:2]
    return f"http://{host!s}:{port}"


class ServerInThread:
    """A test server run in a thread: ``start()`` and ``stop()`` of its own, a context manager
    and its base URL from here."""

    _httpd: TrackingHTTPServer | None

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return base_url(self._httpd)
