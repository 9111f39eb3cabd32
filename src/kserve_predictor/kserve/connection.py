"""Connecting to the Kubernetes API: in-cluster config in a pod, else the kubeconfig files,
with every configuration problem said as one line that names the file (or the in-cluster
variables) and the fix. No request is made here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kserve_predictor.errors import KservePredictorError, NoKubernetesConfig, UsageError
from kserve_predictor.kserve.client import USER_AGENT, Cluster
from kserve_predictor.kserve.pod import SERVICE_VARIABLES, in_pod, pod_namespace
from kserve_predictor.settings.groups import ClusterSettings

log = logging.getLogger("kserve_predictor.cluster")  # stable log channel, not the path

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
