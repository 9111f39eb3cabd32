"""MLflow deployments' target URIs and ``-C key=value`` config, read into the product's settings.

Kept apart from the plugin module so it needs no MLflow: plain text in, settings or a one-line
``UsageError`` out. The MLflow CLI hands every value over as a string; the Python API may pass
numbers or booleans, which read the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kserve_predictor.engines import AUTO, AUTO_ENGINE, ENGINES
from kserve_predictor.errors import UsageError
from kserve_predictor.model.mlmodel import PYFUNC
from kserve_predictor.settings import serving as serving_options
from kserve_predictor.settings import table
from kserve_predictor.settings.serving import ServingOptions
from kserve_predictor.settings.table import config_text as _text
from kserve_predictor.settings.table import default, positive_number

TARGET = "kserve"
_PREFIX = f"{TARGET}:/"

DEPLOY_KEYS: tuple[str, ...] = (
    "namespace",
    "predictor",
    "runtime_version",
    "resources_limits",
    "timeout",
    "force",
    "allow_incompatible",
    "runtime_libraries",
)
"""Config keys of create and update, besides the serving options (serving_options.NAMES)."""
DELETE_KEYS: tuple[str, ...] = ("namespace", "force")
LOCAL_KEYS: tuple[str, ...] = ("predictor", "host", "port", "timeout")
"""Config keys of run-local (the embedded local runtime)."""

# How the product's messages name a flag, and the config key that does the same here.
SWITCH_KEYS = {"--force": "force", "--allow-incompatible": "allow_incompatible"}
VALUE_KEYS = {
    "--runtime-libraries": "runtime_libraries",
    "--runtime-version": "runtime_version",
    "--namespace": "namespace",
}


def kube_context(target_uri: str) -> str | None:
    """The kubeconfig context a target URI names: ``kserve`` is the current context,
    ``kserve:/<context>`` that one (everything after ``kserve:/``, as context names may hold
    slashes and colons, e.g. EKS ARNs)."""
    uri = target_uri.strip()
    if uri == TARGET:
        return None
    if not uri.startswith(_PREFIX) or uri.startswith(f"{_PREFIX}/"):
        raise UsageError(
            f"target URI {target_uri!r} is not kserve or kserve:/<kube-context>; "
            "e.g. -t kserve or -t kserve:/my-cluster"
        )
    return uri[len(_PREFIX) :] or None


def split_name(name: str, namespace: str | None) -> tuple[str, str | None]:
    """A deployment name, optionally ``<namespace>/<name>`` (predict has no config to name the
    namespace in); a namespace given both ways must agree."""
    given, _, app = name.strip().rpartition("/")
    if not given:
        return app, namespace
    if namespace and namespace != given:
        raise UsageError(
            f"deployment {name!r} names namespace {given!r} but namespace {namespace!r} was "
            "given too; give it once"
        )
    return app, given


@dataclass(frozen=True)
class DeployConfig:
    """What create/update's config asked for, checked."""

    namespace: str = ""
    predictor: str = default("predictor")
    runtime_version: str | None = default("runtime_version")
    resources_limits: str | None = default("resources_limits")
    timeout: float = default("timeout")
    force: bool = default("force")
    allow_incompatible: bool = default("allow_incompatible")
    runtime_libraries: str | None = default("runtime_libraries")
    options: ServingOptions = field(default_factory=ServingOptions)


def check_keys(config: Mapping[str, Any] | None, valid: tuple[str, ...], what: str) -> None:
    unknown = sorted(str(k) for k in (config or {}) if k not in valid)
    if unknown:
        raise UsageError(
            f"unknown {what} config key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}; valid keys: {', '.join(valid)}"
        )


def predictor_of(flavor: str | None, config: Mapping[str, Any]) -> str:
    """The predictor engine from ``--flavor`` (an engine name, or an MLflow flavor whose
    format the automatic choice maps to an engine) and/or ``-C predictor``; both must agree."""
    asked = _text(config.get("predictor"))
    if flavor:
        name = flavor.strip().lower()
        engine = (
            name
            if name in ENGINES
            else AUTO_ENGINE.get(PYFUNC if name == "python_function" else name)
        )
        if engine is None:
            raise UsageError(
                f"flavor {flavor!r} names no predictor; use one of: {', '.join(ENGINES)} "
                "(or leave it out: the model decides)"
            )
        if asked and asked.lower() not in (engine, AUTO):
            raise UsageError(
                f"flavor {flavor!r} and config key predictor={asked!r} disagree; give one of them"
            )
        return engine
    return asked or AUTO


def deploy_config(
    config: Mapping[str, Any] | None, flavor: str | None = None, namespace: str | None = None
) -> DeployConfig:
    """create/update's config; ``namespace`` is the endpoint (or the name's namespace part)."""
    config = dict(config or {})
    check_keys(config, DEPLOY_KEYS + serving_options.NAMES, "deployment")
    given = _text(config.get("namespace"))
    if given and namespace and given != namespace:
        raise UsageError(
            f"config key namespace={given!r} and endpoint {namespace!r} disagree; an endpoint is "
            "a namespace: give it once"
        )
    options = serving_options.parse(
        {k: _text(config.get(k)) for k in serving_options.NAMES if k in config},
        spelling=lambda k: f"config key {k}",
    )
    predictor = predictor_of(flavor, config)
    values = table.from_config(
        ("runtime_version", "resources_limits", "timeout", "force", "allow_incompatible",
         "runtime_libraries"),
        config,
    )  # fmt: skip
    return DeployConfig(
        namespace=given or namespace or "", predictor=predictor, options=options, **values
    )


def delete_config(
    config: Mapping[str, Any] | None, namespace: str | None
) -> tuple[str | None, bool]:
    """delete's namespace and force."""
    config = dict(config or {})
    check_keys(config, DELETE_KEYS, "delete")
    given = _text(config.get("namespace"))
    if given and namespace and given != namespace:
        raise UsageError(
            f"config key namespace={given!r} and endpoint {namespace!r} disagree; give it once"
        )
    return given or namespace, table.from_config(("force",), config)["force"]


@dataclass(frozen=True)
class LocalConfig:
    predictor: str = AUTO
    host: str = default("host")
    port: int | None = default("port")
    timeout: float | None = None


def local_config(config: Mapping[str, Any] | None, flavor: str | None) -> LocalConfig:
    config = dict(config or {})
    check_keys(config, LOCAL_KEYS, "run-local")
    port = _text(config.get("port"))
    if port is not None and not port.isdigit():
        raise UsageError(f"config key port={port!r} is not a port number; use e.g. port=8080")
    timeout = _text(config.get("timeout"))
    return LocalConfig(
        predictor=predictor_of(flavor, config),
        host=table.from_config(("host",), config)["host"],
        port=int(port) if port is not None else None,
        timeout=positive_number("config key timeout", timeout, "seconds") if timeout else None,
    )


def as_config_keys(message: str) -> str:
    """A product message with its flags spelled as the config keys that do the same here:
    ``--force`` as ``-C force=true``, ``--runtime-libraries 'x'`` as
    ``-C runtime_libraries='x'``."""
    # The kubeconfig context is the target URI's (-t kserve:/<context>); the file, $KUBECONFIG.
    message = re.sub(r"--context '([^']*)'", r"context '\1' of the target URI kserve:/\1", message)
    message = message.replace("pass --context", "use -t kserve:/<context>")
    message = message.replace(" or pass --kubeconfig", "").replace(" / --kubeconfig", "")
    message = message.replace(
        "pass --target local or --target kserve",
        "name the namespace (--endpoint, or NAMESPACE/NAME) for the InferenceService, or stop "
        "the local one (kserve-predictor delete NAME --target local)",
    )
    for flag, key in SWITCH_KEYS.items():
        message = message.replace(flag, f"-C {key}=true")
    for flag, key in VALUE_KEYS.items():
        message = re.sub(rf"{flag} (?=['\"\w])", f"-C {key}=", message)
        message = message.replace(flag, f"-C {key}=...")
    return message


def target_help() -> str:
    from kserve_predictor.settings.serving import NAMES

    return f"""\
kserve: deploy MLflow models to KServe InferenceServices (kserve-predictor).

Target URI
  kserve                 the kubeconfig's current context ($KUBECONFIG, ~/.kube/config; in a pod
                         its service account)
  kserve:/<kube-context> that kubeconfig context

Endpoints are Kubernetes namespaces: --endpoint NS on create, update, delete, get and list picks
the namespace (default: the context's). predict takes --name NS/NAME for another namespace.
create-endpoint, update-endpoint and delete-endpoint are refused: namespaces are the cluster
admin's (kubectl create namespace NS).

Model URIs: models:/name/version, models:/name@alias, runs:/id/path (MLFLOW_TRACKING_URI) and
s3://bucket/path. The artifacts must be in S3 (MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY), which KServe's storage initializer downloads from.

--flavor: a predictor (one of {", ".join(ENGINES)}) or an MLflow flavor (sklearn, onnx,
keras, python_function, ...); default: the model decides.

create / update config (-C key=value)
  namespace=NS             where to deploy (same as --endpoint)
  predictor=NAME           auto (default) or one of the predictors above
  runtime_version=TAG      the runtime image tag (default: from the model, or the runtime's)
  resources_limits=MAP     YAML/JSON merged over the default limits, e.g. '{{memory: 4Gi}}'
  timeout=SECONDS          wait this long for readiness (default {default("timeout"):g})
  force=true               adopt a service of this name someone else made
  allow_incompatible=true  deploy although the runtime is known not to serve the model correctly
  runtime_libraries=LIST   what the runtime image holds, e.g. 'scikit-learn==1.9.1,numpy==2.4.6'
  serving options:         {", ".join(NAMES)}
                           (see docs/serving-options.md)
update without -m keeps the model and predictor the service serves; other keys not given take
their defaults, as a re-run of `kserve-predictor deploy` does.

delete config: namespace=NS, force=true (delete what kserve-predictor did not make).

run-local config: predictor=NAME, host=ADDR (default 127.0.0.1), port=N (default: a free one),
timeout=SECONDS. It starts a managed local model server and returns; stop it with
`kserve-predictor delete NAME --target local`.
"""
