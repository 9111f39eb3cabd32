"""Kubernetes I/O with the official client: apply, wait until ready, diagnose, delete.

Objects are written with server-side apply under one field manager, so a re-run that sends the
same manifests changes nothing, and a re-run that stops sending a field removes it. Waiting is
a watch on the one InferenceService, resumed when the stream ends, until Ready=True for the
generation this run wrote, a terminal failure, or the deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ClusterError, KservePredictorError, UsageError

log = logging.getLogger(__name__)

FIELD_MANAGER = "kserve-predictor"
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
# KServe's modelStatus.transitionStatus values that no amount of waiting will fix.
TERMINAL_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}
# Pod states that mean the predictor will not start without a change.
TERMINAL_POD_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
}
# 409 too: with server-side apply and force, a conflict can only be a concurrent write.
_RETRYABLE = {409, 429, 500, 502, 503, 504}
_PATHS = {
    "Secret": "/api/v1/namespaces/{namespace}/secrets/{name}",
    "ServiceAccount": "/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
    "InferenceService": f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}",
}
T = TypeVar("T")


@dataclass(frozen=True)
class ClusterSettings:
    """How to reach the Kubernetes API."""

    kubeconfig: str | None = None
    """A kubeconfig path; None means in-cluster config in a pod, else $KUBECONFIG/~/.kube/config."""
    context: str | None = None
    verify_tls: bool = True
    """Verify the API server's certificate; opt out with KSERVE_PREDICTOR_K8S_VERIFY_TLS=false."""
    retry_seconds: float = 60.0
    """How long transient API failures (5xx, 429, dropped connections) are retried."""


class ReadyTimeout(ClusterError):
    """The InferenceService did not become ready in time."""


class NotReady(ClusterError):
    """The InferenceService reached a state it will not recover from by waiting."""


def connect(settings: ClusterSettings) -> Cluster:
    """An API client from in-cluster config in a pod, else the kubeconfig."""
    import os

    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if settings.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=settings.kubeconfig,
                context=settings.context,
                client_configuration=configuration,
            )
    except Exception as e:
        raise UsageError(
            f"no usable Kubernetes configuration ({type(e).__name__}); run in a pod with a service "
            "account, or set KUBECONFIG / --kubeconfig"
        ) from e
    if not settings.verify_tls:
        configuration.verify_ssl = False
    return Cluster(client.ApiClient(configuration), settings)


class Cluster:
    """The few Kubernetes operations a deployment needs."""

    def __init__(self, api_client: Any, settings: ClusterSettings | None = None) -> None:
        self.api = api_client
        self.settings = settings or ClusterSettings()
        self.host = str(api_client.configuration.host)

    # --- requests --------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.api.call_api(
            path,
            method,
            header_params={"Accept": "application/json", **kwargs.pop("headers", {})},
            response_types_map={200: "object", 201: "object"},
            _request_timeout=(10, 60),
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=True,
            **kwargs,
        )

    def _retrying(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action``, retrying transient failures with backoff, within retry_seconds."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as TransportError

        deadline = time.monotonic() + self.settings.retry_seconds
        delay = 0.5
        while True:
            try:
                return action()
            except ApiException as e:
                if e.status not in _RETRYABLE or time.monotonic() + delay > deadline:
                    raise api_error(what, e, self.host) from e
                log.debug("%s: %s %s, retrying in %.1f s", what, e.status, e.reason, delay)
            except TransportError as e:
                if time.monotonic() + delay > deadline:
                    raise ClusterError(
                        f"cannot {what}: the Kubernetes API at {self.host} is unreachable "
                        f"({type(e).__name__}); check the kubeconfig and the network"
                    ) from e
                log.debug("%s: %s, retrying in %.1f s", what, type(e).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    # --- discovery -------------------------------------------------------------------------

    def serves_serving_runtimes(self) -> bool:
        """Does the cluster serve KServe's ServingRuntime API (so predictor.model works)?

        Discovery needs no permission beyond being authenticated.
        """
        from kubernetes.client.exceptions import ApiException

        def probe() -> Any:
            try:
                return self._call("GET", f"/apis/{GROUP}/v1alpha1")
            except ApiException as e:
                if e.status == 404:
                    return {}
                raise

        found = self._retrying("discover the KServe API", probe) or {}
        names = {r.get("name") for r in found.get("resources", [])}
        return bool(names & {"servingruntimes", "clusterservingruntimes"})

    # --- objects ---------------------------------------------------------------------------

    def apply(self, manifest: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply of one object; returns the object as stored (or as it would be)."""
        meta = manifest["metadata"]
        path = _PATHS[manifest["kind"]].format(namespace=meta["namespace"], name=meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        what = f"{'check' if dry_run else 'apply'} {manifest['kind']} {meta['namespace']}/{meta['name']}"
        result = self._retrying(
            what,
            lambda: self._call(
                "PATCH",
                path,
                query_params=query,
                headers={"Content-Type": "application/apply-patch+yaml"},
                body=manifest,
            ),
        )
        if result is None:  # the client drops 201 bodies on some paths: read the object back
            result = self.get(manifest["kind"], meta["namespace"], meta["name"])
        return dict(result or {})

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        path = _PATHS[kind].format(namespace=namespace, name=name)

        def read() -> Any:
            try:
                return self._call("GET", path)
            except ApiException as e:
                if e.status == 404:
                    return None
                raise

        return self._retrying(f"read {kind} {namespace}/{name}", read)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete one object; False if it was already gone."""
        from kubernetes.client.exceptions import ApiException

        path = _PATHS[kind].format(namespace=namespace, name=name)

        def remove() -> bool:
            try:
                self._call("DELETE", path)
                return True
            except ApiException as e:
                if e.status == 404:
                    return False
                raise

        return self._retrying(f"delete {kind} {namespace}/{name}", remove)

    def namespace_exists(self, namespace: str) -> bool | None:
        """True/False, or None when this identity may not read namespaces (the usual case)."""
        from kubernetes.client.exceptions import ApiException

        def read() -> bool | None:
            try:
                self._call("GET", f"/api/v1/namespaces/{namespace}")
                return True
            except ApiException as e:
                if e.status == 404:
                    return False
                if e.status in (401, 403):
                    return None
                raise

        return self._retrying(f"read namespace {namespace}", read)

    # --- waiting ---------------------------------------------------------------------------

    def wait_ready(
        self, namespace: str, name: str, generation: int, timeout: float, poll: float = 10.0
    ) -> dict[str, Any]:
        """Watch the InferenceService until it is Ready for ``generation``; return it.

        Raises NotReady as soon as KServe or the predictor pods report a terminal failure, and
        ReadyTimeout with the last known cause at the deadline.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        for isvc in self._watch(namespace, name, deadline, poll):
            if isvc is None:  # a quiet interval: look at the pods
                failure = self._pod_failure(namespace, name)
                if failure:
                    raise NotReady(f"InferenceService {namespace}/{name} cannot start: {failure}")
                continue
            last = isvc
            verdict = readiness(isvc, generation)
            if verdict is True:
                return isvc
            if isinstance(verdict, str):
                raise NotReady(f"InferenceService {namespace}/{name} failed: {verdict}")
        cause = describe_status(last, generation) if last else "it was never seen"
        pods = self._pod_failure(namespace, name, terminal_only=False)
        raise ReadyTimeout(
            f"InferenceService {namespace}/{name} not ready after {timeout:.0f} s: {cause}"
            + (f"; pods: {pods}" if pods else "")
            + "; check `kubectl describe inferenceservice "
            + f"{name} -n {namespace}` or raise --timeout"
        )

    def _watch(
        self, namespace: str, name: str, deadline: float, poll: float
    ) -> Iterator[dict[str, Any] | None]:
        """The object's states as they change; None after each quiet ``poll`` interval.

        The watch is resumed from the last resourceVersion when the server ends or drops it,
        and restarted from a fresh read when that version is too old (410).
        """
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as TransportError

        resource_version: str | None = None
        while time.monotonic() < deadline:
            if resource_version is None:
                current = self.get("InferenceService", namespace, name)
                if current is None:
                    raise NotReady(f"InferenceService {namespace}/{name} was deleted while waiting")
                resource_version = current["metadata"]["resourceVersion"]
                yield current
            seconds = max(1, int(min(poll, deadline - time.monotonic())))
            saw_event = False
            try:
                stream = watch.Watch().stream(
                    self._list_isvc,
                    namespace=namespace,
                    field_selector=f"metadata.name={name}",
                    resource_version=resource_version,
                    timeout_seconds=seconds,
                    allow_watch_bookmarks=False,
                )
                for event in stream:
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        resource_version = None  # 410 Gone: too old, read afresh
                        break
                    resource_version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "DELETED":
                        raise NotReady(
                            f"InferenceService {namespace}/{name} was deleted while waiting"
                        )
                    saw_event = True
                    yield obj
            except ApiException as e:
                if e.status == 410:
                    resource_version = None
                elif e.status not in _RETRYABLE:
                    raise api_error(
                        f"watch InferenceService {namespace}/{name}", e, self.host
                    ) from e
                time.sleep(0.5)
            except TransportError as e:  # dropped watch: resume from the last version
                log.debug("watch dropped (%s); resuming", type(e).__name__)
                time.sleep(0.2)
            if not saw_event:
                yield None

    def _list_isvc(self, namespace: str, **kwargs: Any) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, **kwargs
        )

    def _pod_failure(self, namespace: str, name: str, terminal_only: bool = True) -> str | None:
        """The predictor pods' waiting/terminated reasons, when they can be read."""
        from kubernetes.client.exceptions import ApiException

        try:
            pods = self._call(
                "GET",
                f"/api/v1/namespaces/{namespace}/pods",
                query_params=[("labelSelector", f"serving.kserve.io/inferenceservice={name}")],
            )
        except (ApiException, OSError):
            return None  # no permission or no answer: the conditions still tell the story
        reasons = []
        for pod in (pods or {}).get("items", []):
            statuses = pod.get("status", {}).get("containerStatuses", []) + pod.get(
                "status", {}
            ).get("initContainerStatuses", [])
            for container in statuses:
                for state_name in ("waiting", "terminated"):
                    state = (container.get("state") or {}).get(state_name) or {}
                    reason = state.get("reason")
                    if reason and (not terminal_only or reason in TERMINAL_POD_REASONS):
                        message = state.get("message", "")
                        reasons.append(f"{container.get('name')}: {reason} {message}".strip())
        return "; ".join(reasons) or None

    def list_runtimes(self, namespace: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The namespace's ServingRuntimes and the cluster's ClusterServingRuntimes, each with
        its kind set; and the kinds that could not be listed, as ``Kind:403`` (no permission) or
        ``Kind:404`` (the cluster does not serve the ServingRuntime API)."""
        from kubernetes.client.exceptions import ApiException

        found: list[dict[str, Any]] = []
        unreadable: list[str] = []
        base = f"/apis/{GROUP}/v1alpha1"
        for kind, path in (
            ("ServingRuntime", f"{base}/namespaces/{namespace}/servingruntimes"),
            ("ClusterServingRuntime", f"{base}/clusterservingruntimes"),
        ):

            def read(path: str = path) -> Any:
                try:
                    return self._call("GET", path)
                except ApiException as e:
                    if e.status in (401, 403, 404):
                        return {"denied": e.status}
                    raise

            listed = self._retrying(f"list {kind}s", read)
            if "denied" in listed:
                unreadable.append(f"{kind}:{404 if listed['denied'] == 404 else 403}")
                continue
            found += [{**item, "kind": kind} for item in listed.get("items") or []]
        return found, unreadable


def readiness(isvc: dict[str, Any], generation: int) -> bool | str:
    """True when Ready for ``generation``; a failure description when it never will be; else
    False (still in progress)."""
    status = isvc.get("status") or {}
    if int(status.get("observedGeneration") or 0) < generation:
        return False  # the controller has not seen this run's spec yet
    model_status = status.get("modelStatus") or {}
    if model_status.get("transitionStatus") in TERMINAL_TRANSITIONS:
        return describe_status(isvc, generation)
    ready = _condition(status, "Ready")
    return bool(ready and ready.get("status") == "True")


def describe_status(isvc: dict[str, Any], generation: int) -> str:
    """What the status says: failing conditions and the model's last failure."""
    status = isvc.get("status") or {}
    parts = []
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        parts.append(f"KServe has not processed generation {generation} yet (observed {observed})")
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if failure:
        text = f"{failure.get('reason', 'failure')}: {failure.get('message', '')}".strip(": ")
        if failure.get("exitCode") is not None:
            text += f" (exit code {failure['exitCode']})"
        parts.append(text)
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False":
            detail = condition.get("message") or condition.get("reason") or ""
            parts.append(f"{condition.get('type')}=False" + (f" ({detail})" if detail else ""))
    return "; ".join(parts) or "no condition reported yet"


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def api_error(what: str, error: Any, host: str) -> KservePredictorError:
    """Translate an ApiException into our tree: a message with the API's own reason."""
    import json

    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        body = {}
    message = str(body.get("message") or error.reason or "").strip()
    status = int(error.status or 0)
    if status == 403 and "admission webhook" in message:
        return UsageError(f"cannot {what}: KServe refused it: {message}")
    if status == 403:
        return UsageError(
            f"cannot {what}: permission denied ({message}); grant the step's service account "
            "the rules in deploy/rbac.yaml"
        )
    if status == 401:
        return UsageError(f"cannot {what}: the Kubernetes API at {host} rejected the credentials")
    if status == 404 and "namespaces" in message and "not found" in message:
        return UsageError(f"cannot {what}: {message}; create the namespace or choose another")
    if status in (400, 422):
        return UsageError(f"cannot {what}: the API server rejected it: {message}")
    if status == 404:
        return UsageError(
            f"cannot {what}: {message or 'not found'}; is KServe installed on this cluster?"
        )
    return ClusterError(f"cannot {what}: Kubernetes API answered {status} {message}".strip())
