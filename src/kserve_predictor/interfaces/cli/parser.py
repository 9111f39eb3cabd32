"""The command line's grammar: every command, its flags and their help.

The deploy flags that are settings take their spelling and default from settings/table.py (the
table the step's variables and the MLflow config keys are read with); the handlers are
commands.py's.
"""

from __future__ import annotations

import argparse
import os

from kserve_predictor import __version__
from kserve_predictor.interfaces.cli.commands import (
    cmd_convert,
    cmd_delete,
    cmd_deploy,
    cmd_detect,
    cmd_gc,
    cmd_install_runtime,
    cmd_rollout,
    cmd_run,
    cmd_serve,
    cmd_status,
    cmd_sync,
)
from kserve_predictor.settings.table import BY_NAME, flag_default

WORKERS_HELP = (
    "server processes, each with its own copy of the model (default: the CPUs this process may use)"
)


def _setting(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, *extra: str,
             **kwargs: object) -> None:  # fmt: skip
    """A flag of the settings table: its spelling, dest and default from the table."""
    setting = BY_NAME[name]
    assert setting.flag is not None
    kwargs.setdefault("default", flag_default(name))
    spelled = setting.flag.lstrip("-").replace("-", "_")
    if spelled != name and "action" not in kwargs:  # --model's value is still MODEL in help
        kwargs.setdefault("metavar", spelled.upper())
    parser.add_argument(setting.flag, *extra, dest=name, **kwargs)  # type: ignore[arg-type]


# fmt: off  (a table of flags reads best one per line)
def build_parser() -> argparse.ArgumentParser:
    from kserve_predictor.engines import AUTO, ENGINES

    engines = f"{AUTO} (default) or one of: {', '.join(ENGINES)}"
    timeout, host = BY_NAME["timeout"].default, BY_NAME["host"].default
    parser = argparse.ArgumentParser(
        prog="kserve-predictor",
        description="Deploy MLflow models to KServe (the FuseML KServe predictor step).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    common = argparse.ArgumentParser(add_help=False)
    add = common.add_argument
    add(
        "-v",
        "--verbose",
        action="store_true",
        default=_env_verbose(),
        help="debug logs (secrets redacted)",
    )
    add(
        "-o",
        "--output",
        choices=("human", "json", "yaml"),
        default="human",
        help="output format (deploy --dry-run -o yaml: only the manifests, one multi-document "
        "YAML stream)",
    )

    model = argparse.ArgumentParser(add_help=False)
    add = model.add_argument
    add(
        "model_url",
        metavar="URL",
        help="s3://bucket/path, a local folder, models:/name/version or runs:/id/path",
    )
    add("--predictor", default=AUTO, help=engines)
    add(
        "--runtime-version",
        default=None,
        help="runtime image tag (default: from the model, or the runtime's)",
    )
    add(
        "--runtime-libraries",
        default=None,
        help="what the runtime image contains, for images the table does not know, "
        "e.g. 'scikit-learn==1.9.1,numpy==2.4.6'",
    )

    model_only = argparse.ArgumentParser(add_help=False)
    model_only.add_argument(
        "model_url",
        metavar="URL",
        help="s3://bucket/path, models:/name/version or runs:/id/path",
    )

    kube = argparse.ArgumentParser(add_help=False)  # how to reach the cluster
    add = kube.add_argument
    _setting(kube, "kubeconfig", help="kubeconfig path (default: in-cluster, then $KUBECONFIG)")
    _setting(kube, "context", help="kubeconfig context (default: its current-context)")
    add(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="do not verify the API server's certificate",
    )

    cluster = argparse.ArgumentParser(add_help=False, parents=[kube])
    _setting(cluster, "namespace", "-n", help="default: the kubeconfig context's namespace")
    _setting(
        cluster,
        "fuseml_url",
        help="FuseML server (default: $FUSEML_SERVER_URL; none: no registration)",
    )

    target = argparse.ArgumentParser(add_help=False)
    target.add_argument(
        "--target",
        choices=("auto", "kserve", "local"),
        default="auto",
        help="auto (default): wherever NAME is; a name both local and on KServe must be chosen",
    )

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "detect", parents=[common, model], help="say what a model is and which engine serves it"
    )
    p.set_defaults(handler=cmd_detect)

    p = sub.add_parser(
        "convert", parents=[common, model], help="write the layout the engine's runtime loads"
    )
    p.add_argument(
        "--name",
        default="model",
        help="model name, used by Triton's repository layout (default: model)",
    )
    p.set_defaults(handler=cmd_convert)

    p = sub.add_parser(
        "serve",
        parents=[common, model],
        help="serve a model locally with KServe's model server (foreground)",
    )
    p.add_argument(
        "--name", default=None, help="model name in the URL paths (default: from the model URL)"
    )
    _setting(p, "host", help=f"address to bind (default {host}: this machine only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=None, help=WORKERS_HELP)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser(
        "run", parents=[common], help="the FuseML step: deploy from FUSEML_* environment variables"
    )
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser(
        "deploy", parents=[common, cluster], help="deploy a model and print its prediction URL"
    )
    add = p.add_argument
    _setting(
        p,
        "model_url",
        required=True,
        help="model URL (s3://…, models:/…, runs:/…; a local folder with --target local)",
    )
    _setting(p, "predictor", help=engines)
    _setting(p, "app_name", default=None, help="application and InferenceService name")
    _setting(p, "runtime_version", help="runtime image tag")
    _setting(
        p,
        "resources_limits",
        help="YAML/JSON mapping merged over the default limits, e.g. '{nvidia.com/gpu: 1}'",
    )
    _setting(p, "workflow", help="FuseML workflow name (labels, registration)")
    _setting(
        p,
        "timeout",
        type=float,
        help=f"seconds to wait for readiness (default {timeout:g}); --target local: for the "
        "server to start",
    )
    _setting(
        p,
        "spec_style",
        choices=("auto", "model", "legacy"),
        help="predictor.model or legacy framework fields (default: probe the cluster)",
    )
    add(
        "--dry-run",
        nargs="?",
        const="server",
        default=None,
        choices=("server", "client"),
        help="write nothing; print the plan and the manifests. server (the default): checked by "
        "the cluster; client: from the model's metadata alone, no kubeconfig or Kubernetes "
        "API (needs --namespace)",
    )
    add(
        "--show-secrets",
        action="store_true",
        help="with --dry-run: print the Secret's S3 credentials (default: redacted)",
    )
    _setting(
        p,
        "runtime_libraries",
        help="what the runtime image contains, e.g. 'scikit-learn==1.9.1,numpy==2.4.6'",
    )
    _setting(
        p,
        "allow_incompatible",
        action="store_true",
        help="deploy even if the runtime is known not to serve the model correctly",
    )
    _setting(
        p,
        "force",
        action="store_true",
        help="adopt an InferenceService of this name created by someone else, and take over "
        "fields another field manager changed",
    )
    add(
        "--target",
        choices=("kserve", "local"),
        default="kserve",
        help="KServe (default) or a managed local model server",
    )
    _setting(p, "host", help=f"--target local: address to bind (default {host})")
    _setting(
        p,
        "port",
        type=int,
        help="--target local: port (default: the running server's on a redeploy, else a free one)",
    )
    _setting(p, "workers", type=int, help="--target local: " + WORKERS_HELP)
    _setting(
        p, "smoke_test", action="store_false", help="skip sending the input example after deploying"
    )
    _serving_options(p)
    p.set_defaults(handler=cmd_deploy)

    p = sub.add_parser(
        "status",
        parents=[common, cluster, target],
        help="show a deployment and its prediction URL (no NAME: list local ones)",
    )
    p.add_argument("name", nargs="?")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser(
        "delete", parents=[common, cluster, target], help="delete a deployment (idempotent)"
    )
    p.add_argument("name")
    _ownership_flags(p, "delete")
    p.add_argument(
        "--gc",
        action="store_true",
        help="also remove the service's converted layout when no other InferenceService uses it",
    )
    p.set_defaults(handler=cmd_delete)

    for command, does in (
        ("promote", "send all traffic to the canary and drop canaryTrafficPercent"),
        ("rollback", "send all traffic back to the previous model and restore it in the spec"),
    ):
        p = sub.add_parser(command, parents=[common, cluster], help=does + " (idempotent)")
        p.add_argument("name")
        _ownership_flags(p, command)
        _setting(p, "timeout", type=float,
                 help=f"seconds to wait for each traffic change (default {timeout:g})")  # fmt: skip
        p.set_defaults(handler=cmd_rollout)

    p = sub.add_parser(
        "sync",
        parents=[common, kube],
        help="keep InferenceServices on MLflow registry aliases (a long-running service)",
    )
    add = p.add_argument
    add(
        "--config",
        required=True,
        help="the entries to keep (YAML; docs/canary-and-sync.md: Follow a registry alias)",
    )
    add("--listen", default="0.0.0.0:8080", help="webhook, /healthz, /metrics, /status (HOST:PORT)")
    add(
        "--interval", type=float, default=None, help="seconds between polls (default: the config's)"
    )
    add("--once", action="store_true", help="sync every entry once, in the foreground, and exit")
    p.set_defaults(handler=cmd_sync)

    p = sub.add_parser(
        "gc",
        parents=[common, model_only, kube],
        help="remove a model's converted layouts that no InferenceService uses",
    )
    add = p.add_argument
    add("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    add(
        "--grace-period",
        default="24h",
        help="keep layouts younger than this (90s, 30m, 24h, 7d; default 24h)",
    )
    add(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="look for InferenceServices only here (repeatable; default: every namespace)",
    )
    p.set_defaults(handler=cmd_gc)

    from kserve_predictor.engines.own_runtime import IMAGE, NAME

    p = sub.add_parser(
        "install-runtime",
        parents=[common, kube],
        help=f"install the {NAME} runtime (ClusterServingRuntime; --namespace: a ServingRuntime)",
    )
    add = p.add_argument
    add("--namespace", "-n", default=None, help="install a namespaced ServingRuntime there")
    add("--image", default=IMAGE, help=f"runtime image (default {IMAGE}; e.g. a mirror's copy)")
    p.set_defaults(handler=cmd_install_runtime)
    return parser


# fmt: on


def _ownership_flags(parser: argparse.ArgumentParser, verb: str) -> None:
    """--workflow and --force of the commands that change or remove an existing service."""
    _setting(
        parser,
        "workflow",
        help=f"{verb} only if NAME belongs to this FuseML workflow (default: any of ours)",
    )
    _setting(
        parser,
        "force",
        action="store_true",
        help=f"{verb} even what kserve-predictor did not make (or another workflow made)",
    )


def _serving_options(parser: argparse.ArgumentParser) -> None:
    """deploy's "serving options" group: one flag per ServingOptions field, as text (parsed
    and checked by serving_options.parse, which the step and the MLflow plugin share)."""
    from kserve_predictor.settings.serving import (
        AUTOSCALER_CLASSES,
        LOGGER_MODES,
        PROTOCOLS,
        SCALE_METRICS,
    )

    group = parser.add_argument_group(
        "serving options", "KServe's serving options (each also FUSEML_<NAME> in the step)"
    )
    helps = {
        "canary_traffic_percent": "percent of traffic to the new model, 0-100 (Knative mode)",
        "min_replicas": "minimum replicas (0: scale to zero, Knative mode)",
        "max_replicas": "maximum replicas",
        "scale_target": "autoscaling target value for the metric",
        "scale_metric": f"autoscaling metric: {', '.join(SCALE_METRICS)}",
        "autoscaler_class": f"Standard mode autoscaler: {', '.join(AUTOSCALER_CLASSES)}",
        "deployment_mode": "Standard or Knative (legacy RawDeployment, Serverless)",
        "protocol": f"inference protocol: {', '.join(PROTOCOLS)} (default: the engine's)",
        "logger": "payload logging sink URL (http/https)",
        "logger_mode": f"what is logged: {', '.join(LOGGER_MODES)} (default all)",
        "request_timeout": "seconds a request may take (the predictor's timeout)",
        "container_concurrency": "requests one replica handles at a time (0: no limit)",
        "node_selector": "YAML/JSON mapping of node labels, e.g. '{gpu: a100}'",
        "tolerations": "YAML/JSON list of tolerations",
        "gpu": "N NVIDIA GPUs: the nvidia.com/gpu limit and its usual toleration",
        "overlay": "YAML/JSON merge patch (RFC 7386) over the generated InferenceService",
    }
    metavars = {"logger": "URL", "node_selector": "YAML", "tolerations": "YAML", "overlay": "YAML"}
    words = ("scale_metric", "autoscaler_class", "deployment_mode", "protocol", "logger_mode")
    for name, text in helps.items():
        metavar = metavars.get(name) or ("NAME" if name in words else "N")
        group.add_argument(
            "--" + name.replace("_", "-"), dest=name, default=None, metavar=metavar, help=text
        )


def _env_verbose() -> bool:
    return os.environ.get("FUSEML_VERBOSE", "").strip().lower() == "true"
