"""Kubernetes I/O with the official client: apply, wait until ready, diagnose, delete.

Objects are written with server-side apply under one field manager, so a re-run that sends the
same manifests changes nothing, and a re-run that stops sending a field removes it. A field
another manager owns is a conflict the user resolves (``--force`` takes it over). Waiting is a
watch on the one InferenceService, resumed when the stream ends, until the rollout this run
made serves (readiness.py), a terminal failure, or the deadline; every request made while
waiting is bounded by that deadline, so a server that stops answering cannot stretch it.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from kserve_predictor import __version__
from kserve_predictor.errors import (
    ClusterError,
    FieldConflict,
    Forbidden,
    Invalid,
    KservePredictorError,
    KubernetesApiError,
    NoKubernetesConfig,
    NotFound,
    NotReady,
    ReadyTimeout,
    Unavailable,
    UsageError,
    kubernetes_error_class,
)
from kserve_predictor.kserve.pod import SERVICE_VARIABLES, in_pod, pod_namespace
from kserve_predictor.kserve.readiness import (
    READING_PODS,
    Expectation,
    describe_status,
    judge,
    of_rollout,
    pod_failure,
    ready_condition,
)
from kserve_predictor.kserve.stages import StageLog
from kserve_predictor.retry import TRANSIENT_STATUSES, Contact, unreached
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


_DEFAULT_KUBECONFIG = "~/.kube/config"


def connect(settings: ClusterSettings) -> Cluster:
    """An API client from in-cluster config in a pod, else the kubeconfig.

    Every problem with the configuration is a UsageError naming the file (or the in-cluster
    variables) and what is wrong; NoKubernetesConfig when nothing configures a cluster at all.
    No request is made here.
    """

    from kubernetes import client

    # Configuration() sets the "urllib3" logger back to WARNING (its debug=False setter),
    # which would let urllib3's connection warnings through to stderr: keep the levels the
    # application chose.
    levels = {name: logging.getLogger(name).level for name in ("urllib3", "client")}
    configuration = client.Configuration()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    if settings.kubeconfig is None and in_pod():
        namespace, origin = _load_in_cluster(configuration), "the pod's " + SERVICE_VARIABLES
    else:
        namespace, origin = _load_kubeconfig(settings, configuration)
    if not settings.verify_tls:
        configuration.verify_ssl = False
    # Our retry policy does the retrying (with jitter, within the deadline); urllib3's own
    # would add unbounded waits and log a warning per attempt.
    configuration.retries = False
    api_client = client.ApiClient(configuration)
    api_client.user_agent = USER_AGENT
    return Cluster(api_client, settings, namespace, origin=origin)


def _load_in_cluster(configuration: Any) -> str:
    """The pod's service account; returns the pod's namespace."""
    import os

    from kubernetes import config
    from kubernetes.config.incluster_config import SERVICE_CERT_FILENAME, SERVICE_TOKEN_FILENAME

    try:
        config.load_incluster_config(client_configuration=configuration)
    except Exception as e:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "")
        problem = _config_problem(e)
        if "token" in problem.lower():
            problem += f" ({SERVICE_TOKEN_FILENAME})"
        elif "cert" in problem.lower():
            problem += f" ({SERVICE_CERT_FILENAME})"
        raise UsageError(
            f"in-cluster Kubernetes configuration (KUBERNETES_SERVICE_HOST={host!r}, "
            f"KUBERNETES_SERVICE_PORT={port!r}) is unusable: {problem}; give the pod a service "
            "account token (automountServiceAccountToken), or set KUBECONFIG"
        ) from e
    return pod_namespace() or "default"  # kubectl's namespace when none is named


@dataclass(frozen=True)
class _KubeconfigFiles:
    """The kubeconfig file(s) in use and who named them, for messages."""

    text: str
    """As given: one path, or several separated by ':' (KUBECONFIG's list)."""
    origin: str
    """--kubeconfig, KUBECONFIG or the default location."""

    @property
    def paths(self) -> list[str]:
        import os

        return [os.path.expanduser(p) for p in self.text.split(os.pathsep) if p.strip()]

    def __str__(self) -> str:
        shown = ", ".join(self.paths) or repr(self.text)
        return f"kubeconfig {shown} ({self.origin})"


def _kubeconfig_files(settings: ClusterSettings) -> _KubeconfigFiles:
    import os

    variable = os.environ.get("KUBECONFIG", "").strip()
    if settings.kubeconfig:
        # The step and the MLflow plugin pass $KUBECONFIG on: name the variable then.
        origin = "KUBECONFIG" if settings.kubeconfig == variable else "--kubeconfig"
        return _KubeconfigFiles(settings.kubeconfig, origin)
    if variable:
        return _KubeconfigFiles(variable, "KUBECONFIG")
    return _KubeconfigFiles(_DEFAULT_KUBECONFIG, "the default location; KUBECONFIG is unset")


def _load_kubeconfig(settings: ClusterSettings, configuration: Any) -> tuple[str, str]:
    """Load the kubeconfig's context into ``configuration``; returns the context's namespace
    (kubectl's default) and where the API server's address came from."""
    import os

    from kubernetes import config

    files = _kubeconfig_files(settings)
    present = [p for p in files.paths if os.path.exists(p)]
    if not present:
        if files.text == _DEFAULT_KUBECONFIG and not settings.context:
            raise NoKubernetesConfig(
                f"no Kubernetes configuration: not in a pod, KUBECONFIG is unset and "
                f"{_DEFAULT_KUBECONFIG} does not exist; set KUBECONFIG or pass --kubeconfig"
            )
        missing = "does not exist" if len(files.paths) < 2 else "do not exist"
        raise UsageError(f"{files} {missing}; fix the path, or set KUBECONFIG / --kubeconfig")
    documents = [_read_kubeconfig(path, files) for path in present]
    context = _choose_context(documents, settings.context, files)
    where = f"{files}, context {context['name']!r}"
    plugin = _PluginErrors()
    root = logging.getLogger()
    root.addFilter(plugin)  # the client logs (and swallows) a failing credentials plugin
    try:
        config.load_kube_config(
            config_file=os.pathsep.join(present),
            context=context["name"],
            client_configuration=configuration,
        )
    except KservePredictorError:
        raise
    except Exception as e:
        raise UsageError(f"{where} is unusable: {_config_problem(e)}; fix the kubeconfig") from e
    finally:
        root.removeFilter(plugin)
    if plugin.messages:
        user = (context.get("context") or {}).get("user", "")
        raise UsageError(
            f"{where}: the credentials plugin (exec) of user {user!r} failed: "
            f"{_config_problem(plugin.messages[0])}; check that its command is installed and "
            "works when run by hand"
        )
    namespace = str((context.get("context") or {}).get("namespace") or "default")
    return namespace, where


class _PluginErrors(logging.Filter):
    """Collects (and keeps off the output) what the kubernetes client's kubeconfig loader logs
    instead of raising: the failure of a credentials plugin."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        path = record.pathname.replace("\\", "/")
        if record.levelno >= logging.ERROR and "kubernetes/config/" in path:
            self.messages.append(record.getMessage())
            return False
        return True


def _read_kubeconfig(path: str, files: _KubeconfigFiles) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except OSError as e:
        raise UsageError(
            f"kubeconfig {path} ({files.origin}) cannot be read ({e.strerror}); fix its "
            "permissions or choose another file"
        ) from e
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UsageError(
            f"kubeconfig {path} ({files.origin}) is not YAML{at}; fix the file or choose another"
        ) from e
    if document is None:
        raise UsageError(f"kubeconfig {path} ({files.origin}) is empty; choose another file")
    if not isinstance(document, dict):
        raise UsageError(
            f"kubeconfig {path} ({files.origin}) is not a kubeconfig (a YAML "
            f"{type(document).__name__}, not a mapping of clusters, contexts and users)"
        )
    return document


def _choose_context(
    documents: list[dict[str, Any]], asked: str | None, files: _KubeconfigFiles
) -> dict[str, Any]:
    """The context asked for, else the current-context, merged as the client merges files:
    the first definition of a name wins, the last current-context."""
    contexts: dict[str, dict[str, Any]] = {}
    clusters: set[str] = set()
    current = ""
    for document in documents:
        for item in document.get("contexts") or []:
            if isinstance(item, dict) and item.get("name") is not None:
                contexts.setdefault(str(item["name"]), item)
        for item in document.get("clusters") or []:
            if isinstance(item, dict) and item.get("name") is not None:
                clusters.add(str(item["name"]))
        if document.get("current-context"):
            current = str(document["current-context"])
    names = ", ".join(sorted(contexts)) or "none"
    if asked:
        if asked not in contexts:
            raise UsageError(
                f"--context {asked!r} is not in {files}; choose one of its contexts: {names}"
            )
        name = asked
    elif not contexts:
        raise UsageError(f"{files} defines no contexts; add one or choose another file")
    elif not current:
        raise UsageError(
            f"{files} has no current-context; pass --context (contexts: {names}) or run "
            "kubectl config use-context"
        )
    elif current not in contexts:
        raise UsageError(
            f"{files}: its current-context {current!r} is not among its contexts ({names}); "
            "pass --context or run kubectl config use-context"
        )
    else:
        name = current
    context = contexts[name]
    cluster = str((context.get("context") or {}).get("cluster") or "")
    if cluster not in clusters:
        raise UsageError(
            f"{files}: context {name!r} names cluster {cluster!r}, which it does not define; "
            "fix the kubeconfig"
        )
    return context


def _config_problem(error: Exception | str) -> str:
    """The client's ConfigException message as one line, without its boilerplate prefix."""
    text = " ".join(str(error).split()) or type(error).__name__
    for prefix in ("Invalid kube-config file. ", "Invalid kube-config. "):
        text = text.removeprefix(prefix)
    return text[:300].rstrip(".")


def _transient(error: Exception) -> bool:
    """Worth another try: a transport failure, throttling or a server-side failure that is
    not a known permanent one (an apply of fields the CRD does not declare)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as TransportError

    if isinstance(error, ApiException):
        return error.status in TRANSIENT_STATUSES and not _undeclared_field(error)
    return isinstance(error, (TransportError, OSError))


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
            return self.policy.call(what, action, _transient, deadline, self.contact)
        except ApiException as e:
            raise api_error(what, e, self.host) from e
        except Exception as e:
            if not _transient(e):
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
        """Watch the InferenceService until the rollout ``expect`` describes serves (see
        readiness.py: the status, the revisions and the pods that carry its rollout id, never
        observedGeneration alone); return it.

        Raises NotReady as soon as KServe or this rollout's pods report a terminal failure,
        and ReadyTimeout with what is still missing at the deadline, which holds even when the
        API server stops answering.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        missing = ""
        api_problem = ""
        stages = StageLog(f"{namespace}/{name}", log)
        # While only the pods are missing, look at them often: a pod turning Ready changes
        # nothing in the InferenceService that a watch would see (Standard mode).
        interval = [poll]
        try:
            for isvc in self._watch(namespace, name, deadline, lambda: interval[0]):
                pods: list[dict[str, Any]] | None = None
                if isvc is None:  # a quiet interval: look at the pods
                    if last is None:
                        continue
                    isvc = last
                    pods = self._pods(namespace, name, deadline)
                    failure = pod_failure(of_rollout(pods, expect))
                    if failure:
                        raise NotReady(
                            f"InferenceService {namespace}/{name} cannot start: {failure}"
                        )
                last = isvc
                verdict = judge(isvc, expect, pods)
                if verdict.failure:
                    raise NotReady(f"InferenceService {namespace}/{name} failed: {verdict.failure}")
                if pods is None:  # a new state: the pods decide, and tell the stage
                    pods = self._pods(namespace, name, deadline)
                    if pods is None and verdict.waiting == READING_PODS:
                        raise NotReady(
                            f"cannot read the pods of {namespace}/{name}, which tell whether the "
                            "new model serves; grant list on pods (deploy/rbac.yaml)"
                        )
                    verdict = judge(isvc, expect, pods)
                if verdict.ready:
                    stages.update(isvc, expect, None, "")
                    return isvc
                missing = verdict.waiting
                interval[0] = min(poll, 1.0) if ready_condition(isvc) else poll
                stages.update(isvc, expect, pods, missing)
        except ClusterError as e:
            # Retries bounded by the deadline gave up as it came: a timeout, said as one.
            if isinstance(e, NotReady) or deadline - time.monotonic() > self.policy.max_delay:
                raise
            api_problem = str(e)
        cause = _timeout_cause(last, missing) if last else "it was never seen"
        if api_problem:
            cause += f" (the API kept failing: {api_problem})"
        stuck = pod_failure(
            of_rollout(self._pods(namespace, name, time.monotonic() + _DIAGNOSIS_SECONDS), expect),
            terminal_only=False,
        )
        raise ReadyTimeout(
            f"InferenceService {namespace}/{name} not ready after {timeout:.0f} s: {cause}"
            + (f"; pods: {stuck}" if stuck else "")
            + "; check `kubectl describe inferenceservice "
            + f"{name} -n {namespace}` or raise --timeout"
        )

    def _watch(
        self, namespace: str, name: str, deadline: float, poll: Callable[[], float]
    ) -> Iterator[dict[str, Any] | None]:
        """The object's states as they change; None after each quiet ``poll()`` interval.

        The watch resumes from the last resourceVersion it saw (objects and bookmarks) when
        the server ends or drops it; when that version is too old (410 Gone), it starts again
        from a fresh list's resourceVersion. Failures back off with jitter.
        """
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        resource_version: str | None = None
        failures = 0
        while time.monotonic() < deadline:
            if resource_version is None:
                current, resource_version = self._list_one(namespace, name, deadline)
                if current is None:
                    raise NotReady(f"InferenceService {namespace}/{name} was deleted while waiting")
                yield current
            left = deadline - time.monotonic()
            seconds = max(1, int(min(poll(), left)))
            # A read timeout a little past the server's own end of the stream, and never past
            # the deadline: a stream that goes silent fails instead of hanging.
            read_timeout = max(0.5, min(seconds + 2.0, left + 0.5))
            saw_event = False
            try:
                stream = watch.Watch().stream(
                    self._list_isvc,
                    namespace=namespace,
                    field_selector=f"metadata.name={name}",
                    resource_version=resource_version,
                    timeout_seconds=seconds,
                    allow_watch_bookmarks=True,
                    _request_timeout=(min(self.policy.connect_timeout, left), read_timeout),
                )
                for event in stream:
                    obj = event["raw_object"]
                    resource_version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "BOOKMARK":  # progress without a change
                        continue
                    if event["type"] == "DELETED":
                        raise NotReady(
                            f"InferenceService {namespace}/{name} was deleted while waiting"
                        )
                    saw_event = True
                    yield obj
                failures = 0
            except ApiException as e:
                if e.status == 410:
                    log.debug("watch: resourceVersion %s expired; listing afresh", resource_version)
                    resource_version = None
                elif not _transient(e):
                    raise api_error(
                        f"watch InferenceService {namespace}/{name}", e, self.host
                    ) from e
                else:
                    failures += 1
            except Exception as e:
                if not _transient(e):
                    raise
                log.debug("watch failed (%s); resuming", type(e).__name__)
                failures += 1
            if failures:
                time.sleep(max(0.0, min(self.policy.delay(failures), deadline - time.monotonic())))
            if not saw_event:
                yield None

    def _list_one(
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

    def _list_isvc(self, namespace: str, **kwargs: Any) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, **kwargs
        )

    def pods(self, namespace: str, name: str = "") -> list[dict[str, Any]] | None:
        """The InferenceService's pods (every InferenceService's in the namespace when ``name``
        is ''), or None when they cannot be read."""
        return self._pods(namespace, name, time.monotonic() + self.policy.seconds)

    def _pods(self, namespace: str, name: str, deadline: float) -> list[dict[str, Any]] | None:
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


def _timeout_cause(isvc: dict[str, Any], missing: str) -> str:
    """What the status says at the deadline, and what the rollout still lacked."""
    described = describe_status(isvc)
    if missing and described == "no condition reported yet":
        return missing
    return f"{missing}; {described}" if missing else described


def _body(error: Any) -> dict[str, Any]:
    import json

    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


_UNDECLARED = re.compile(r"(\.[^\s:]+): field not declared in schema")


def _undeclared_field(error: Any) -> str | None:
    """The field a 500 "failed to create typed patch object" names: the server-side apply of
    a field the installed CRD does not declare (a newer manifest than the KServe installed)."""
    message = str(_body(error).get("message") or "")
    if int(error.status or 0) != 500 or "failed to create typed patch object" not in message:
        return None
    found = _UNDECLARED.search(message)
    return found.group(1) if found else "a field"


def _conflicts(body: dict[str, Any]) -> list[str]:
    """'<field> (managed by "<manager>")' for each FieldManagerConflict cause of a 409."""
    found = []
    for cause in (body.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "FieldManagerConflict":
            manager = re.search(r'conflict with "([^"]*)"', str(cause.get("message") or ""))
            owner = manager.group(1) if manager else "another field manager"
            found.append(f'{cause.get("field", "a field")} (managed by "{owner}")')
    return found


def api_error(what: str, error: Any, host: str) -> KubernetesApiError:
    """Translate an ApiException into our tree: the class its status says (errors.py), with a
    message holding the API's own reason."""
    body = _body(error)
    message = str(body.get("message") or error.reason or "").strip()
    status = int(error.status or 0)
    reason = str(body.get("reason") or "")
    field = _undeclared_field(error)
    if field:  # a 500 about the request's schema: waiting does not help
        return Invalid(
            f"cannot {what}: the installed KServe CRD does not declare {field}; upgrade KServe, "
            "or deploy without the option that needs it (e.g. --spec-style legacy)",
            status,
            reason,
        )
    conflicts = _conflicts(body)
    if status == 409 and conflicts:
        more = f" and {len(conflicts) - 2} more" if len(conflicts) > 2 else ""
        return FieldConflict(
            f"cannot {what}: {', '.join(conflicts[:2])}{more} changed by someone else; "
            "pass --force (FUSEML_FORCE=true) to take the field over, or change it back",
            status,
            reason,
        )
    if status == 403 and "admission webhook" in message:
        return Forbidden(f"cannot {what}: KServe refused it: {message}", status, reason)
    # RBAC answers a read in a namespace this identity has no rules in (as a missing one)
    # with 403: the step's identity cannot tell "missing" from "not mine".
    namespace = re.search(
        r'cannot (?:get|list|watch) resource .* in the namespace "([^"]+)"', message
    )
    if status == 403 and namespace:
        return Forbidden(
            f"cannot {what}: namespace {namespace.group(1)!r} does not exist or this identity "
            "cannot see it; create it, choose another (--namespace), or grant the step's "
            f"service account the rules in deploy/rbac.yaml there ({message})",
            status,
            reason,
        )
    if status == 403:
        return Forbidden(
            f"cannot {what}: permission denied ({message}); grant the step's service account "
            "the rules in deploy/rbac.yaml",
            status,
            reason,
        )
    if status == 401:
        return Forbidden(
            f"cannot {what}: the Kubernetes API at {host} rejected the credentials", status, reason
        )
    if status == 404 and "namespaces" in message and "not found" in message:
        return NotFound(
            f"cannot {what}: {message}; create the namespace or choose another", status, reason
        )
    if status in (400, 422):
        return Invalid(f"cannot {what}: the API server rejected it: {message}", status, reason)
    if status == 404:
        return NotFound(
            f"cannot {what}: {message or 'not found'}; is KServe installed on this cluster?",
            status,
            reason,
        )
    kind = kubernetes_error_class(status)
    return kind(
        f"cannot {what}: Kubernetes API answered {status} {message}".strip(), status, reason
    )
