"""The command line: parse, build settings, call the library, map errors to exit codes.

Nothing below this module prints; this module alone writes to stdout/stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import KservePredictorError
from .redact import RedactingFormatter, Redactor

log = logging.getLogger("kserve_predictor")

Handler = Callable[[argparse.Namespace, Redactor], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    redactor = Redactor()
    _configure_logging(args.verbose, redactor)
    handler: Handler = args.handler
    try:
        return handler(args, redactor)
    except KservePredictorError as e:
        return _fail(redactor, str(e), e.exit_code)
    except KeyboardInterrupt:
        return _fail(redactor, "interrupted", 130)
    except Exception as e:  # a bug: say so in one line; the traceback only in verbose logs
        log.debug("unexpected error", exc_info=True)
        return _fail(redactor, f"internal error ({type(e).__name__}: {e}); please report it", 1)


def _fail(redactor: Redactor, message: str, code: int) -> int:
    print(f"error: {redactor(message)}", file=sys.stderr)
    return code


def _configure_logging(verbose: bool, redactor: Redactor) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(redactor, "%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Third-party chatter (urllib3 retry warnings, ...) stays out of normal output; our own
    # messages say what failed. Their debug logs carry signed headers: never below INFO.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)


def _emit(args: argparse.Namespace, redactor: Redactor, data: dict[str, Any], human: str) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) if args.output == "json" else human
    print(redactor(text))


# --- commands ---------------------------------------------------------------------------


def _location(url: str, redactor: Redactor) -> Any:
    from .modelurl import resolve
    from .settings import S3Settings

    s3 = S3Settings.from_env()
    for secret in s3.secrets():
        redactor.add(secret)
    return resolve(url, s3)


def cmd_detect(args: argparse.Namespace, redactor: Redactor) -> int:
    from .detect import detect

    detection = detect(_location(args.model_url, redactor), args.predictor, args.runtime_version)
    data = detection.as_dict()
    _emit(args, redactor, data, _human_detection(data))
    return 0


def _human_detection(d: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in sorted(d["library_versions"].items()))
    return "\n".join(
        [
            f"model:            {d['url']}",
            f"format:           {d['format']} ({d['model_path']}"
            + (f", {d['serialization']})" if d["serialization"] else ")"),
            f"engine:           {d['engine']} (runtime {d['runtime']}, protocol {d['protocol']})"
            if d["engine"]
            else f"engine:           none: {d['problem']}",
            f"engines:          {', '.join(d['engines']) or 'none'}",
            f"runtime version:  {d['runtime_version'] or 'the runtime default'}",
            f"libraries:        {versions or 'not recorded'}",
            f"signature:        {len(d['signature']['inputs'])} inputs, {len(d['signature']['outputs'])} outputs",
            f"input example:    {'yes' if d['input_example'] else 'no'}",
        ]
    )


def cmd_convert(args: argparse.Namespace, redactor: Redactor) -> int:
    from .convert import convert
    from .detect import detect

    detection = detect(_location(args.model_url, redactor), args.predictor, args.runtime_version)
    result = convert(detection.location, detection.info, detection.require_engine(), args.name)
    data = {
        "engine": result.engine,
        "location": result.location,
        "copied": result.copied,
        "written": result.written,
        "skipped": result.skipped,
        "deleted": result.deleted,
        "bytes_copied": result.bytes_copied,
    }
    summary = (
        f"{len(result.copied)} copied, {len(result.written)} written, "
        f"{len(result.skipped)} up to date, {len(result.deleted)} removed"
    )
    lines = [f"converted for {result.engine}: {result.location}", summary]
    lines += [f"  copied   {f}" for f in result.copied] + [
        f"  written  {f}" for f in result.written
    ]
    lines += [f"  kept     {f}" for f in result.skipped] + [
        f"  removed  {f}" for f in result.deleted
    ]
    _emit(args, redactor, data, "\n".join(lines))
    return 0


def _deploy_and_report(args: argparse.Namespace, redactor: Redactor, settings: Any) -> int:
    from .deploy import deploy
    from .manifests import to_yaml

    for secret in settings.secrets():
        redactor.add(secret)
    result = deploy(settings)
    if result.dry_run:
        plan = (
            f"# plan: deploy {settings.model_url} as {result.app_name} in {result.namespace}\n"
            f"# engine {result.engine} (protocol {result.protocol}), spec style {result.spec_style}\n"
            f"# converted layout: {result.storage_uri}\n"
            "# nothing was written (dry run)\n"
        )
        data = {**result.as_dict(), "manifests": result.manifests}
        if args.output == "json":
            data["manifests"] = json.loads(json.dumps(result.manifests))
            for m in data["manifests"]:
                if m["kind"] == "Secret":
                    m["stringData"] = {k: "<redacted>" for k in m.get("stringData", {})}
        _emit(args, redactor, data, plan + to_yaml(result.manifests))
        return 0
    from .step import write_result

    written = write_result(result.prediction_url) if args.command == "run" else None
    if written:
        log.debug("wrote the prediction URL to %s", written)
    human = result.prediction_url
    if args.command != "run":
        human = (
            f"{result.app_name} ready in {result.namespace} ({result.engine}, {result.protocol}); "
            f"changed: {', '.join(result.changed) or 'nothing'}\n{result.prediction_url}"
        )
    _emit(args, redactor, result.as_dict(), human)
    return 0


def cmd_run(args: argparse.Namespace, redactor: Redactor) -> int:
    from .step import settings_from_env

    settings = settings_from_env()
    log.info("deploying %s as %s in %s", settings.model_url, settings.app_name, settings.namespace)
    return _deploy_and_report(args, redactor, settings)


def cmd_deploy(args: argparse.Namespace, redactor: Redactor) -> int:
    from pathlib import Path

    from .errors import UsageError
    from .naming import Origin, check_app_name
    from .settings import DeploySettings, S3Settings, parse_bool

    origin = Origin.from_codeset_dir(Path.cwd(), args.workflow or "")
    if args.app_name is not None:
        name, stable = check_app_name(args.app_name.strip(), "--app-name"), True
    elif origin.project and origin.codeset:
        name, stable = origin.default_app_name()
    else:
        raise UsageError("--app-name is required outside a FuseML codeset; e.g. --app-name iris")
    env = os.environ
    settings = DeploySettings(
        model_url=args.model,
        predictor=args.predictor,
        app_name=name,
        stable_name=stable,
        runtime_version=args.runtime_version,
        resources_limits=args.resources_limits,
        namespace=args.namespace,
        workflow=args.workflow or "",
        project=origin.project,
        codeset=origin.codeset,
        timeout=args.timeout,
        spec_style=args.spec_style,
        dry_run=args.dry_run,
        force=args.force,
        fuseml_url=args.fuseml_url or None,
        fuseml_verify_tls=parse_bool(
            "KSERVE_PREDICTOR_FUSEML_VERIFY_TLS",
            env.get("KSERVE_PREDICTOR_FUSEML_VERIFY_TLS"),
            True,
        ),
        s3=S3Settings.from_env(),
        kubeconfig=args.kubeconfig,
        k8s_verify_tls=not args.insecure_skip_tls_verify,
    )
    return _deploy_and_report(args, redactor, settings)


def _cluster(args: argparse.Namespace) -> Any:
    from .cluster import ClusterSettings, connect

    return connect(ClusterSettings(args.kubeconfig, None, not args.insecure_skip_tls_verify))


def cmd_status(args: argparse.Namespace, redactor: Redactor) -> int:
    from .errors import UsageError
    from .lifecycle import service_status

    status = service_status(_cluster(args), args.namespace, args.name, args.fuseml_url or None)
    if status is None:
        raise UsageError(
            f"no InferenceService {args.namespace}/{args.name}; check the name and --namespace"
        )
    lines = [
        f"name:            {status['name']} ({status['namespace']})",
        f"ready:           {status['ready']}"
        + (f" ({status['problem']})" if status["problem"] else ""),
        f"engine:          {status['engine'] or 'unknown'} (protocol {status['protocol']})",
        f"storage:         {status['storage_uri']}",
        f"prediction URL:  {status['prediction_url'] or '-'}",
        f"FuseML:          {status['fuseml'] or 'not registered'}",
    ]
    _emit(args, redactor, status, "\n".join(lines))
    return 0 if status["ready"] else 1


def cmd_delete(args: argparse.Namespace, redactor: Redactor) -> int:
    from .lifecycle import delete_service

    removed = delete_service(_cluster(args), args.namespace, args.name, args.fuseml_url or None)
    human = (
        "\n".join(f"deleted {item}" for item in removed) or f"nothing named {args.name} to delete"
    )
    _emit(args, redactor, {"deleted": removed}, human)
    return 0


# --- parser -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from .engines import AUTO, ENGINES

    parser = argparse.ArgumentParser(
        prog="kserve-predictor",
        description="Deploy MLflow models to KServe (the FuseML KServe predictor step).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=_env_verbose(),
        help="debug logs (secrets redacted)",
    )
    common.add_argument(
        "--output", choices=("human", "json"), default="human", help="output format"
    )
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "model_url",
        metavar="URL",
        help="s3://bucket/path, a local folder, models:/name/version or runs:/id/path",
    )
    model.add_argument(
        "--predictor", default=AUTO, help=f"{AUTO} (default) or one of: {', '.join(ENGINES)}"
    )
    model.add_argument(
        "--runtime-version",
        default=None,
        help="runtime image tag (default: from the model, or the runtime's)",
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

    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument(
        "--namespace", "-n", default=os.environ.get("FUSEML_ENV_WORKFLOW_NAMESPACE") or "default"
    )
    cluster.add_argument(
        "--kubeconfig", default=None, help="kubeconfig path (default: in-cluster, then $KUBECONFIG)"
    )
    cluster.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="do not verify the API server's certificate",
    )
    cluster.add_argument(
        "--fuseml-url",
        default=os.environ.get("FUSEML_SERVER_URL", ""),
        help="FuseML server (default: $FUSEML_SERVER_URL; none: no registration)",
    )

    p = sub.add_parser(
        "run", parents=[common], help="the FuseML step: deploy from FUSEML_* environment variables"
    )
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser(
        "deploy",
        parents=[common, cluster],
        help="deploy a model to KServe and print its prediction URL",
    )
    p.add_argument("--model", required=True, help="model URL (s3://…, models:/…, runs:/…)")
    p.add_argument(
        "--predictor", default=AUTO, help=f"{AUTO} (default) or one of: {', '.join(ENGINES)}"
    )
    p.add_argument("--app-name", default=None, help="application and InferenceService name")
    p.add_argument("--runtime-version", default=None, help="runtime image tag")
    p.add_argument(
        "--resources-limits",
        default=None,
        help="YAML/JSON mapping merged over the default limits, e.g. '{nvidia.com/gpu: 1}'",
    )
    p.add_argument(
        "--workflow",
        default=os.environ.get("FUSEML_ENV_WORKFLOW_NAME", ""),
        help="FuseML workflow name (labels, registration)",
    )
    p.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for readiness (default 600)"
    )
    p.add_argument(
        "--spec-style",
        choices=("auto", "model", "legacy"),
        default="auto",
        help="predictor.model or legacy framework fields (default: probe the cluster)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="write nothing; print the plan and the manifests"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="adopt an InferenceService of this name created by someone else",
    )
    p.set_defaults(handler=cmd_deploy)

    p = sub.add_parser(
        "status", parents=[common, cluster], help="show a deployment and its prediction URL"
    )
    p.add_argument("name")
    p.set_defaults(handler=cmd_status)
    p = sub.add_parser("delete", parents=[common, cluster], help="delete a deployment (idempotent)")
    p.add_argument("name")
    p.set_defaults(handler=cmd_delete)
    return parser


def _env_verbose() -> bool:
    return os.environ.get("FUSEML_VERBOSE", "").strip().lower() == "true"


if __name__ == "__main__":
    sys.exit(main())
