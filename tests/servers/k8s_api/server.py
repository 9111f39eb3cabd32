"""``KubeApiServer``: the server tests start, steer and inspect."""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from ..tracking_http import ServerInThread, serve_in_thread, shut_down
from .http import _Api, _Fault, _HttpServer
from .rbac import Role
from .registry import _carry_system_metadata, _with_identity, _WriteContext
from .request import RequestRecord, _Target
from .resources import Obj, _resource_type
from .storage import _Event, _key
from .validation import _STRATEGIES

_log = logging.getLogger(__name__)


WriteCallback = Callable[[str, str, str, "Obj | None"], None]


# --------------------------------------------------------------------------------------------
# Callbacks run on their own thread so a slow controller never blocks a request.


class _Dispatcher:
    def __init__(self) -> None:
        self.callbacks: list[WriteCallback] = []
        self.errors: list[BaseException] = []
        self._queue: queue.Queue[tuple[str, str, str, Obj | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="k8s-api-callbacks", daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="k8s-api-callbacks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def submit(self, item: tuple[str, str, str, Obj | None]) -> None:
        if self.callbacks:
            self._queue.put(item)

    def wait_idle(self, timeout: float) -> bool:
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(
                lambda: not self._queue.unfinished_tasks, timeout
            )

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                for callback in list(self.callbacks):
                    try:
                        callback(*item)
                    except Exception as err:  # reported through server.callback_errors
                        _log.exception("on_write callback failed")
                        self.errors.append(err)
            finally:
                self._queue.task_done()


class KubeApiServer(ServerInThread):
    """A Kubernetes API server for tests, on 127.0.0.1, with KServe's CRDs and webhooks.

    Args:
        serving_runtime_api: serve ``serving.kserve.io/v1alpha1`` (ServingRuntimes); the product
            probes discovery for it.
        inference_service_api: serve ``serving.kserve.io/v1beta1`` (False: KServe not installed).
        validate_schema: prune/default/validate custom resources against the CRD files (skipped
            anyway for a CRD file that is absent; see ``crd_available()``).
        kserve_webhooks: apply KServe's InferenceService defaulter and validator rules.
        namespaces: namespaces that exist from the start.
        history_size: events kept for watch resumption; older resourceVersions get 410.
        user: the user named in 403 Forbidden messages.
        token: when set, requests need ``Authorization: Bearer <token>`` (else 401).
        host, port: where to listen (port 0: any free port).
        role: an RBAC Role (e.g. deploy/rbac.yaml's) bound to the user: requests it does not
            grant, and any outside its namespace, answer 403 as RBAC does.
        crd_dir: where the CRD files are (default ../shared/kserve/crd): an older or edited
            CRD stands for another installed KServe version.

    Steering and inspection from tests (all thread-safe; objects returned are copies):
        ``fail_next``, ``forbidden``, ``drop_watches``, ``on_write``, ``wait_for_callbacks``,
        ``update_status``, ``put_object``, ``delete_object``, ``get_object``, ``list_objects``,
        ``write_count``, ``requests``, ``active_watches``, ``resource_version``.
    """

    def __init__(
        self,
        *,
        serving_runtime_api: bool = True,
        inference_service_api: bool = True,
        validate_schema: bool = True,
        kserve_webhooks: bool = True,
        namespaces: Iterable[str] = ("default",),
        history_size: int = 1000,
        user: str = "system:serviceaccount:default:default",
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        role: Role | None = None,
        crd_dir: str | Path | None = None,
    ) -> None:
        self.crd_dir = Path(crd_dir) if crd_dir else None  # None: CRD_DIR, read at each use
        self.serving_runtime_api = serving_runtime_api
        self.inference_service_api = inference_service_api
        self.validate_schema = validate_schema
        self.kserve_webhooks = kserve_webhooks
        self.kserve_version = (0, 20)
        """The KServe release whose webhooks admit InferenceServices, where releases differ
        (the deployment mode's names); the controller simulation has its own."""
        self.user = user
        self.token = token
        # (verb, resource) pairs answered with 403, e.g. ("get", "inferenceservices") or
        # ("patch", "inferenceservices/status"); "*" matches any verb or resource. A third item
        # limits the rule to one namespace, or with "" to the cluster scope, as RBAC grants
        # differ: ("list", "inferenceservices", "") refuses only the cluster-wide list.
        self.forbidden: set[tuple[str, ...]] = set()
        # A Role bound to the user in one namespace (RBAC): everything else is forbidden.
        self.role: Role | None = role
        self._address = (host, port)
        self._dispatcher = _Dispatcher()
        self._api = _Api(self, history_size)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        for namespace in namespaces:
            self.add_namespace(namespace)

    # ---- lifecycle

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL."""
        if self._httpd is not None:
            return self.url
        self._api.stopping = False
        self._httpd = _HttpServer(self._address, self._api)
        self._thread = serve_in_thread(self._httpd, "k8s-api")
        self._dispatcher.start()
        return self.url

    def stop(self) -> None:
        """Stop serving: ends watch streams, closes connections, stops callbacks."""
        if self._httpd is None:
            return
        with self._api.store.cond:
            self._api.stopping = True
            self._api.store.cond.notify_all()
        shut_down(self._httpd, self._thread)
        self._dispatcher.stop()
        self._httpd = None

    def client_configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` pointed at this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        if self.token:
            # v36 looks the prefix up under "BearerToken" only; "authorization" would send the
            # bare token.
            configuration.api_key = {"BearerToken": self.token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return configuration

    def kubeconfig(self, namespace: str = "default") -> Obj:
        """A kubeconfig document for code that loads one (``config.load_kube_config``)."""
        user: Obj = {"token": self.token} if self.token else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": user}],
            "contexts": [
                {
                    "name": "test",
                    "context": {"cluster": "test", "user": "test", "namespace": namespace},
                }
            ],
            "current-context": "test",
        }

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace)))
        return path

    # ---- fault injection

    def fail_next(
        self,
        method: str,
        path_substring: str,
        status: int,
        times: int = 1,
        *,
        message: str | None = None,
        reason: str | None = None,
        retry_after: int | None = None,
        watch: bool | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose method matches (``"*"``: any) and whose path
        contains ``path_substring`` with ``status`` and a Status body.

        ``retry_after`` adds a Retry-After header; note urllib3 (under the kubernetes client)
        then silently retries GET/PUT/DELETE answered 429/503, up to 3 times. ``watch``: only
        watch requests (True) or only the others (False).
        """
        fault = _Fault(
            method.upper(), path_substring, status, times, message, reason, retry_after, watch
        )
        with self._api.store.cond:
            self._api.faults.append(fault)

    def drop_watches(self, abrupt: bool = False) -> int:
        """End every open watch stream; returns how many were open.

        Clean (default): the chunked stream ends, and ``kubernetes.watch.Watch`` reconnects from
        its last resourceVersion. Abrupt: the connection is cut mid-stream, so the client raises
        (urllib3 ProtocolError) instead.
        """
        with self._api.store.cond:
            self._api.watch_epoch += 1
            self._api.abrupt_drop = abrupt
            self._api.store.cond.notify_all()
            return self._api.active_watches

    def freeze(self) -> None:
        """Hang: from now on requests are read and never answered, and open watches send
        nothing and ignore their timeouts; connections stay open (no error, no close)."""
        with self._api.store.cond:
            self._api.frozen = True
            self._api.store.cond.notify_all()

    def thaw(self) -> None:
        with self._api.store.cond:
            self._api.frozen = False
            self._api.store.cond.notify_all()

    def used_access(self, user_agent_prefix: str = "") -> set[tuple[str, str, str]]:
        """(API group, resource, verb) of every request whose User-Agent starts so."""
        return {
            access
            for r in self.requests
            if r.user_agent.startswith(user_agent_prefix)
            for access in r.access
        }

    @property
    def active_watches(self) -> int:
        return self._api.active_watches

    def wait_for_watches(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` watch streams are open."""
        with self._api.store.cond:
            return self._api.store.cond.wait_for(lambda: self._api.active_watches >= count, timeout)

    # ---- controller hooks

    def on_write(self, callback: WriteCallback) -> None:
        """Call ``callback(plural, namespace, name, obj)`` after each change of a namespaced
        object (``obj`` is None when it was deleted), on a background thread, in order."""
        self._dispatcher.callbacks.append(callback)

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued callback (and what they triggered) has run."""
        return self._dispatcher.wait_idle(timeout)

    @property
    def callback_errors(self) -> list[BaseException]:
        return list(self._dispatcher.errors)

    def _on_event(self, event: _Event) -> None:
        if event.namespace:
            obj = None if event.type == "DELETED" else copy.deepcopy(event.obj)
            self._dispatcher.submit(
                (event.plural, event.namespace, event.obj["metadata"]["name"], obj)
            )

    def update_status(self, plural: str, namespace: str | None, name: str, status: Obj) -> Obj:
        """Replace an object's status as a controller does (validated against the CRD).

        A status equal to the stored one changes nothing (no new resourceVersion, no event).
        Raises LookupError when the object is absent, ApiError when the status is invalid.
        """
        rt = _resource_type(plural)
        target = _Target(rt, namespace, name, "status" if rt.status_subresource else None)
        ctx = _WriteContext(
            manager="kserve-controller", subresource=target.subresource, via_api=False
        )
        with self._api.store.cond:
            old = self._api.store.get(target.key)
            if old is None:
                raise LookupError(f"{plural} {namespace}/{name} does not exist")
            new = self._api.prepare(
                target, name, {**old, "status": copy.deepcopy(status)}, old, ctx
            )
            return copy.deepcopy(self._api.save(rt, new, old, ctx))

    # ---- direct access to the stored objects

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> Obj:
        obj = {"metadata": {"name": name, "labels": dict(labels or {})}}
        return self.put_object("namespaces", obj)

    def put_object(self, plural: str, obj: Obj) -> Obj:
        """Store obj as is (no admission or schema validation), creating or replacing it."""
        rt = _resource_type(plural)
        meta = obj.get("metadata") or {}
        if rt.namespaced and not meta.get("namespace"):
            raise ValueError(f"{plural} are namespaced: set metadata.namespace")
        target = _Target(rt, meta.get("namespace"), meta.get("name"), None)
        body = _with_identity(rt, target.namespace, meta.get("name", ""), obj)
        _STRATEGIES.get(rt.plural, lambda _rt, _obj: [])(rt, body)
        with self._api.store.cond:
            old = self._api.store.get(target.key)
            _carry_system_metadata(body, old)
            return copy.deepcopy(self._api.store.save(rt, body, old))

    def delete_object(self, plural: str, namespace: str | None, name: str) -> bool:
        """Delete at once, ignoring finalizers; False when it did not exist."""
        rt = _resource_type(plural)
        with self._api.store.cond:
            old = self._api.store.get(_key(rt, namespace, name))
            if old is None:
                return False
            self._api.store.remove(rt, old)
            return True

    def get_object(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        with self._api.store.cond:
            obj = self._api.store.get(_key(_resource_type(plural), namespace, name))
            return copy.deepcopy(obj)

    def list_objects(self, plural: str, namespace: str | None = None) -> list[Obj]:
        with self._api.store.cond:
            return copy.deepcopy(self._api.store.items(_resource_type(plural).plural, namespace))

    def write_count(self, plural: str, namespace: str | None, name: str) -> int:
        """How many API requests changed this object (no-op writes and update_status excluded)."""
        return self._api.write_counts[_key(_resource_type(plural), namespace, name)]

    @property
    def requests(self) -> list[RequestRecord]:
        with self._api.store.cond:
            return list(self._api.records)

    @property
    def resource_version(self) -> int:
        return self._api.store.revision
