"""A TCP proxy on loopback that can drop connections on demand, for fault injection.

``pause()`` makes it close every new and open connection at once (the server looks down);
``resume()`` forwards again; ``drop_next(n)`` closes the next n connections without forwarding.
With ``choose``, each new connection goes where ``choose()`` says (the KServe simulation's
traffic split between revisions); None closes it (no revision to route to).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class TcpProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        choose: Callable[[], tuple[str, int] | None] | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        self.choose = choose
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.paused = False
        self.to_drop = 0
        self.dropped = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pause(self) -> None:
        with self._lock:
            self.paused = True
            for conn in list(self._open):
                _close(conn)
            self._open.clear()

    def resume(self) -> None:
        self.paused = False

    def drop_next(self, count: int = 1) -> None:
        self.to_drop += count

    def close(self) -> None:
        self._running = False
        self.pause()
        _close(self._listener)

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.paused or self.to_drop > 0:
                if self.to_drop > 0:
                    self.to_drop -= 1
                self.dropped += 1
                _close(client)
                continue
            target = self.choose() if self.choose else self.target
            try:
                if target is None:
                    raise OSError("no target")
                upstream = socket.create_connection(target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                _close(conn)
                with self._lock:
                    self._open.discard(conn)


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()
