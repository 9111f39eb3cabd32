"""The long-running part of ``sync``: an HTTP endpoint, a poller and one worker.

- ``POST /webhook``: MLflow's ``model_version_alias.created`` deliveries, signature verified
  (``signature.verify``); an entry following that model and alias is queued. Refused requests
  answer 401 and are logged with the reason only, never the body.
- the poller queues every entry each ``interval`` seconds, so a missed webhook only delays;
- one worker takes the queue in order: one rollout at a time, so never two for one app;
- ``GET /healthz`` (200 while the worker lives), ``GET /metrics`` (Prometheus),
  ``GET /status`` (each entry: alias, version served, version wanted, state).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kserve_predictor.errors import KservePredictorError
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.sync import metrics
from kserve_predictor.sync.config import Entry, SyncConfig
from kserve_predictor.sync.reconcile import Registry, State, Target, decide, record, roll_out
from kserve_predictor.sync.signature import verify

log = logging.getLogger("kserve_predictor.sync")
ALIAS_CREATED = ("model_version_alias", "created")
MAX_BODY = 1024 * 1024


class Sync:
    def __init__(self, config: SyncConfig, cluster: Cluster, target: Target, secret: str) -> None:
        self.config = config
        self.cluster = cluster
        self.target = target
        self.secret = secret
        self.registry = Registry()
        self.states: dict[str, State] = {
            e.key: State(e.app, e.namespace, e.model, e.alias) for e in config.entries
        }
        self.pending: dict[str, float] = {}  # entry key -> when sync learned of a change
        self.wake = threading.Condition()
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self._work, name="sync-worker", daemon=True)
        self.poller = threading.Thread(target=self._poll, name="sync-poller", daemon=True)

    # --- triggers -------------------------------------------------------------------------

    def queue(self, entries: list[Entry], why: str) -> None:
        with self.wake:
            for entry in entries:
                self.pending.setdefault(entry.key, time.time())
            self.wake.notify_all()
        log.debug("queued %s (%s)", [e.key for e in entries], why)

    def on_webhook(self, headers: dict[str, str], body: bytes, peer: str) -> int:
        reason = verify(self.secret, headers, body)
        if reason:
            metrics.WEBHOOKS.labels("refused").inc()
            log.warning(json.dumps({"decision": "webhook-refused", "reason": reason, "peer": peer}))
            return 401
        try:
            payload = json.loads(body)
            event = (payload.get("entity"), payload.get("action"))
            data = payload.get("data") or {}
        except (ValueError, AttributeError):
            return 400
        metrics.WEBHOOKS.labels("accepted").inc()
        if event == ALIAS_CREATED:
            hits = [e for e in self.config.entries
                    if e.model == data.get("name") and e.alias == data.get("alias")]  # fmt: skip
            if hits:
                self.queue(hits, "webhook")
        return 200

    def _poll(self) -> None:
        while not self.stopping.is_set():
            self.queue(list(self.config.entries), "poll")
            self.stopping.wait(self.config.interval)

    # --- the worker -----------------------------------------------------------------------

    def _work(self) -> None:
        while not self.stopping.is_set():
            with self.wake:
                while not self.pending and not self.stopping.is_set():
                    self.wake.wait(1.0)
                if self.stopping.is_set():
                    return
                key = next(iter(self.pending))
                since = self.pending.pop(key)
            entry = next(e for e in self.config.entries if e.key == key)
            try:
                self.sync_one(entry, since)
            except Exception:  # a bug must not stop the worker: logged, the next poll retries
                log.exception("sync of %s failed unexpectedly", key)

    def sync_one(self, entry: Entry, since: float) -> State:
        try:
            state = decide(entry, self.registry, self.cluster, self.target)
        except KservePredictorError as e:
            state = self.states[entry.key]
            state.state, state.message = "error", str(e).splitlines()[0]
            record("error", entry, state, reason=state.message)
            return state
        except Exception as e:  # the registry client's own errors: keep serving, say why
            state = self.states[entry.key]
            state.state, state.message = "error", f"{type(e).__name__}: {e}"
            record("error", entry, state, reason=state.message)
            return state
        self.states[entry.key] = state
        metrics.LAST_SYNC.labels(entry.key).set(time.time())
        if state.state in ("in-sync", "failed"):
            record(state.state, entry, state)
            return state
        record("roll-out", entry, state, policy=entry.policy)
        outcome = roll_out(entry, state, self.registry, self.cluster, self.target)
        metrics.ROLLOUTS.labels(entry.key, outcome).inc()
        if outcome in ("succeeded", "promoted"):
            metrics.LAG.labels(entry.key).set(time.time() - since)
            state.served, state.state = state.wanted, "in-sync"
        else:
            state.state = {"rolled_back": "rolled-back"}.get(outcome, outcome)
        record(outcome, entry, state)
        return state

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.worker.start()
        self.poller.start()

    def stop(self) -> None:
        self.stopping.set()
        with self.wake:
            self.wake.notify_all()

    def healthy(self) -> bool:
        return self.worker.is_alive() and not self.stopping.is_set()

    def status(self) -> list[dict[str, Any]]:
        return [self.states[e.key].as_dict() for e in self.config.entries]


def serve(sync: Sync, host: str, port: int) -> ThreadingHTTPServer:
    """The HTTP endpoint, serving in a thread of its own; returns the server (to shut down)."""
    handler = _handler(sync)
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sync-http", daemon=True).start()
    return server


def _handler(sync: Sync) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok = sync.healthy()
                self._send(200 if ok else 503, b'{"ok": true}' if ok else b'{"ok": false}')
            elif self.path == "/metrics":
                self._send(200, metrics.exposition(), "text/plain; version=0.0.4")
            elif self.path == "/status":
                self._send(200, json.dumps(sync.status()).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            if self.path != "/webhook":
                self._send(404, b'{"error": "not found"}')
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, b'{"error": "too large"}')
                return
            body = self.rfile.read(length)
            code = sync.on_webhook(dict(self.headers.items()), body, self.client_address[0])
            self._send(code, b"{}" if code == 200 else b'{"error": "refused"}')

    return Handler
