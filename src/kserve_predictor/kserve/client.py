"""Kubernetes I/O with the official client: apply, read, list, delete, and the wait (wait.py).

Objects are written with server-side apply under one field manager, so a re-run that sends the
same manifests changes nothing, and a re-run that stops sending a field removes it. A field
another manager owns is a conflict the user resolves (``--force`` takes it over). Every request
runs under the one retry policy; API answers leave as the typed errors of api_errors.py.
connection.py builds a Cluster from settings.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kserve_predictor import __version__
from kserve_predictor.errors import (
    Forbidden,
    KservePredictorError,
    NotFound,
    Unavailable,
)
from kserve_predictor.kserve.api_errors import api_error, transient
from kserve_predictor.kserve.readiness import (
    Expectation,
)
from kserve_predictor.retry import Contact, unreached
from kserve_predictor.settings.groups import ClusterSettings  # built by settings.build

log = logging.getLogger("kserve_predictor.cluster")  # stable log channel, not the path

FIELD_MANAGER = "kserve-predictor"
USER_AGENT = f"kserve-predictor/{__version__}"
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
ISVC_LABEL = "serving.kserve.io/inferenceservice"  # on every pod KServe makes for a service
# After the deadline, the last diagnostics (the pods' state) get this long, and no retry.
_DIAGNOSIS_SECONDS = 2.0
_PATHS = {
    "Secret": "/api/v1/namespaces/{namespace}/secrets/{name}",
    "ServiceAccount": "/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
    "InferenceService": f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}",
    "ServingRuntime": f"/apis/{GROUP}/v1alpha1/namespaces/{{namespace}}/servingruntimes/{{name}}",
    "ClusterServingRuntime": f"/apis/{GROUP}/v1alpha1/clusterservingruntimes/{{name}}",
}
T = TypeVar("T")


class Cluster:
    """The few Kubernetes operations a deployment needs."""

    def __init__(
        self,
        api_client: Any,
        settings: ClusterSettings | None = None,
        namespace: str = "default",
        origin: str = "",
    ) -> None:
        self.api = api_client
        self.settings = settings or ClusterSettings()
        self.policy = self.settings.retry
        self.host = str(api_client.configuration.host)
        self.default_namespace = namespace
        """The namespace of the kubeconfig context (or the pod's): where to deploy by default."""
        self.origin = origin
        """Where the API server's address came from (the kubeconfig and context), for messages."""
        self.contact = Contact()
        """Whether the API server has answered: until then a refused connection is not retried."""

    # --- requests --------------------------------------------------------------------------

    def _call(self, method: str, path: str, timeout: tuple[float, float], **kwargs: Any) -> Any:
        return self.api.call_api(
            path,
            method,
            header_params={"Accept": "application/json", **kwargs.pop("headers", {})},
            response_types_map={200: "object", 201: "object"},
            _request_timeout=timeout,
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=True,
            **kwargs,
        )

    def _retrying(
        self,
        what: str,
        action: Callable[[tuple[float, float]], T],
        deadline: float | None = None,
    ) -> T:
        """Run ``action(timeouts)`` under the retry policy; errors leave translated."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.policy.call(what, action, transient, deadline, self.contact)
        except ApiException as e:
            raise api_error(what, e, self.host) from e
        except Exception as e:
            if not transient(e):
                raise
            raise self._unreachable(what, e) from e

    def _unreachable(self, what: str, error: Exception) -> Unavailable:
        from urllib3.exceptions import TimeoutError as Timeout

        reason = unreached(error)
        if reason:
            source = f" (from {self.origin})" if self.origin else ""
            if self.contact.answered:  # it answered earlier in this run, then went away
                return Unavailable(
                    f"cannot {what}: the Kubernetes API at {self.host}{source} stopped answering "
                    f"({reason}); check that the API server is healthy, then retry"
                )
            return Unavailable(
                f"cannot {what}: nothing answers at the Kubernetes API address {self.host}"
                f"{source}: {reason}; check the server address in the kubeconfig and that the "
                "API server is running"
            )
        if isinstance(error, (Timeout, TimeoutError)):
            return Unavailable(
                f"cannot {what}: the Kubernetes API at {self.host} did not answer in time; "
                "check that the API server is healthy, then retry"
            )
        return Unavailable(
            f"cannot {what}: the Kubernetes API at {self.host} is unreachable "
            f"({type(error).__name__}); check the kubeconfig and the network"
        )

    # --- discovery -------------------------------------------------------------------------

    def serves_serving_runtimes(self) -> bool:
        """Does the cluster serve KServe's ServingRuntime API (so predictor.model works)?

        Discovery needs no permission beyond being authenticated.
        """
        try:
            found = self._retrying(
                "discover the KServe API",
                lambda timeout: self._call("GET", f"/apis/{GROUP}/v1alpha1", timeout),
            )
        except NotFound:
            return False
        found = found or {}
        names = {r.get("name") for r in found.get("resources", [])}
        return bool(names & {"servingruntimes", "clusterservingruntimes"})

    # --- objects ---------------------------------------------------------------------------

    def apply(
        self, manifest: dict[str, Any], dry_run: bool = False, force: bool = False
    ) -> dict[str, Any]:
        """Server-side apply of one object; returns the object as stored (or as it would be).

        Without ``force``, a field another manager owns with another value is a conflict
        (UsageError naming the field and the manager); with it, this manager takes it over.
        """
        meta = manifest["metadata"]
        path = _PATHS[manifest["kind"]].format(namespace=meta["namespace"], name=meta["name"])
        query = [("fieldManager", FIELD_MANAGER)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        what = f"{'check' if dry_run else 'apply'} {manifest['kind']} {meta['namespace']}/{meta['name']}"
        result = self._retrying(
            what,
            lambda timeout: self._call(
                "PATCH",
                path,
                timeout,
                query_params=query,
                headers={"Content-Type": "application/apply-patch+yaml"},
                body=manifest,
            ),
        )
        if result is None:  # the client drops 201 bodies on some paths: read the object back
            result = self.get(manifest["kind"], meta["namespace"], meta["name"])
        return dict(result or {})

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when the API answers NotFound."""
        try:
            return self._on_object("GET", "read", kind, namespace, name)
        except NotFound:
            return None

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete one object; False if it was already gone."""
        try:
            self._on_object("DELETE", "delete", kind, namespace, name)
        except NotFound:
            return False
        return True

    def _on_object(self, method: str, verb: str, kind: str, namespace: str, name: str) -> Any:
        path = _PATHS[kind].format(namespace=namespace, name=name)
        return self._retrying(
            f"{verb} {kind} {namespace}/{name}", lambda timeout: self._call(method, path, timeout)
        )

    def namespace_exists(self, namespace: str) -> bool | None:
        """True/False, or None when this identity may not read namespaces (the usual case)."""
        try:
            self._retrying(
                f"read namespace {namespace}",
                lambda timeout: self._call("GET", f"/api/v1/namespaces/{namespace}", timeout),
            )
        except NotFound:
            return False
        except Forbidden:
            return None
        return True

    # --- waiting ---------------------------------------------------------------------------

    def wait_ready(
        self,
        namespace: str,
        name: str,
        expect: Expectation,
        timeout: float,
        poll: float = 10.0,
    ) -> dict[str, Any]:
        """Watch the InferenceService until the rollout ``expect`` describes serves (wait.py)."""
        from kserve_predictor.kserve.wait import wait_ready

        return wait_ready(self, namespace, name, expect, timeout, poll)

    def list_one(
        self, namespace: str, name: str, deadline: float
    ) -> tuple[dict[str, Any] | None, str]:
        """The InferenceService (or None) and the list's resourceVersion to watch from."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        found = self._retrying(
            f"read InferenceService {namespace}/{name}",
            lambda timeout: self._call(
                "GET", path, timeout, query_params=[("fieldSelector", f"metadata.name={name}")]
            ),
            deadline,
        )
        items = (found or {}).get("items") or []
        return (items[0] if items else None), str(found["metadata"]["resourceVersion"])

    def list_isvc(self, namespace: str, **kwargs: Any) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, **kwargs
        )

    def pods(self, namespace: str, name: str = "") -> list[dict[str, Any]] | None:
        """The InferenceService's pods (every InferenceService's in the namespace when ``name``
        is ''), or None when they cannot be read."""
        return self.pods_until(namespace, name, time.monotonic() + self.policy.seconds)

    def pods_until(self, namespace: str, name: str, deadline: float) -> list[dict[str, Any]] | None:
        """The InferenceService's pods, when they can be read before ``deadline``; else None."""
        selector = f"{ISVC_LABEL}={name}" if name else ISVC_LABEL
        try:
            pods = self._retrying(
                f"read the pods of {namespace}/{name or '*'}",
                lambda timeout: self._call(
                    "GET",
                    f"/api/v1/namespaces/{namespace}/pods",
                    timeout,
                    query_params=[("labelSelector", selector)],
                ),
                deadline,
            )
        except KservePredictorError as e:  # no permission or no answer: said by the caller
            log.debug("pods not readable: %s", e)
            return None
        return list((pods or {}).get("items") or [])

    # --- listing (for gc) ------------------------------------------------------------------

    def list_inference_services(self, namespace: str | None = None) -> list[dict[str, Any]] | None:
        """Every InferenceService in ``namespace`` (None: the whole cluster), or None when this
        identity may not list them there."""
        base = f"/apis/{GROUP}/{VERSION}"
        path = f"{base}/namespaces/{namespace}/{PLURAL}" if namespace else f"{base}/{PLURAL}"
        where = f"in {namespace}" if namespace else "cluster-wide"
        return self._list_all(path, f"list InferenceServices {where}")

    def list_namespaces(self) -> list[str] | None:
        """The names of all namespaces, or None when this identity may not list them."""
        items = self._list_all("/api/v1/namespaces", "list namespaces")
        return None if items is None else [str(n["metadata"]["name"]) for n in items]

    def _list_all(self, path: str, what: str) -> list[dict[str, Any]] | None:
        def page(token: str, timeout: tuple[float, float]) -> Any:
            query = [("limit", "500")] + ([("continue", token)] if token else [])
            return self._call("GET", path, timeout, query_params=query)

        items: list[dict[str, Any]] = []
        token = ""
        while True:
            try:
                answer = self._retrying(what, functools.partial(page, token))
            except Forbidden:
                return None
            items.extend(answer.get("items") or [])
            token = (answer.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def list_runtimes(self, namespace: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The namespace's ServingRuntimes and the cluster's ClusterServingRuntimes, each with
        its kind set; and the kinds that could not be listed, as ``Kind:403`` (no permission) or
        ``Kind:404`` (the cluster does not serve the ServingRuntime API)."""
        found: list[dict[str, Any]] = []
        unreadable: list[str] = []
        base = f"/apis/{GROUP}/v1alpha1"
        for kind, path in (
            ("ServingRuntime", f"{base}/namespaces/{namespace}/servingruntimes"),
            ("ClusterServingRuntime", f"{base}/clusterservingruntimes"),
        ):
            try:
                listed = self._retrying(
                    f"list {kind}s",
                    lambda timeout, path=path: self._call("GET", path, timeout),  # type: ignore[misc]
                )
            except (Forbidden, NotFound) as e:  # unknown; a hidden namespace is reported
                unreadable.append(f"{kind}:{404 if isinstance(e, NotFound) else 403}")  # after
                continue
            found += [{**item, "kind": kind} for item in listed.get("items") or []]
        return found, unreadable
