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

from kserve_predictor import __version__
from kserve_predictor.errors import KservePredictorError
from kserve_predictor.kserve.isvc import describe_split
from kserve_predictor.redact import RedactingFormatter, Redactor

log = logging.getLogger("kserve_predictor")
WORKERS_HELP = (
    "server processes, each with its own copy of the model (default: the CPUs this process may use)"
)

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
    if args.output == "json":
        text = json.dumps(data, indent=2, sort_keys=True)
    elif args.output == "yaml":
        import yaml

        text = yaml.safe_dump(data, sort_keys=True).rstrip("\n")
    else:
        text = human
    print(redactor(text))


# --- commands ---------------------------------------------------------------------------


def _progress(args: argparse.Namespace) -> Any:
    """Copy progress on stderr when it is a terminal and the output is not JSON."""
    from kserve_predictor.progress import for_terminal

    return for_terminal(sys.stderr, wanted=args.output != "json")


def _s3_settings(redactor: Redactor) -> Any:
    """S3 settings from the environment; their secrets are masked in everything printed."""
    from kserve_predictor.settings.groups import S3Settings

    s3 = S3Settings.from_env()
    for secret in s3.secrets():
        redactor.add(secret)
    return s3


def _location(url: str, redactor: Redactor) -> Any:
    from kserve_predictor.model.urls import resolve

    return resolve(url, _s3_settings(redactor))


def cmd_detect(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.choice.detect import detect

    detection = detect(
        _location(args.model_url, redactor),
        args.predictor,
        args.runtime_version,
        runtime_libraries=args.runtime_libraries,
    )
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
            *_human_compatibility(d),
        ]
    )


def _human_compatibility(d: dict[str, Any]) -> list[str]:
    c = d.get("compatibility")
    if not c:
        return []
    source = d.get("runtime_source") or "defaults"
    where = "this cluster" if source.startswith("cluster") else "KServe's v0.20.0 default runtimes"
    lines = [
        f"runtime:          {c['runtime'] or 'none'} ({c['image'] or 'no image'}; from {where})",
        f"compatibility:    {c['status']}",
    ]
    lines += [f"  - {problem}" for problem in c["problems"]]
    if d.get("choice"):
        lines.append(f"choice:           {d['choice']}")
    return lines


def cmd_convert(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.choice.detect import detect
    from kserve_predictor.layouts.convert import convert

    detection = detect(_location(args.model_url, redactor), args.predictor, args.runtime_version)
    result = convert(
        detection.location, detection.info, detection.require_engine(), args.name, _progress(args)
    )
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
    from kserve_predictor.ops.deploy import deploy

    for secret in settings.secrets():
        redactor.add(secret)
    result = deploy(settings, progress=_progress(args))
    if result.dry_run:
        return _report_dry_run(args, redactor, settings, result)
    from kserve_predictor.interfaces.step import write_result

    written = write_result(result.prediction_url) if args.command == "run" else None
    if written:
        log.debug("wrote the prediction URL to %s", written)
    human = result.prediction_url
    if args.command != "run":
        human = (
            f"{result.app_name} ready in {result.namespace} ({result.engine}, {result.protocol}); "
            f"changed: {', '.join(result.changed) or 'nothing'}\n{result.prediction_url}"
        )
        if result.protocol == "grpc-v2":
            from kserve_predictor.ops.deploy import GRPC_METHOD

            human += f"\ngRPC: call {GRPC_METHOD} with model_name {result.app_name}"
        if settings.options.canary_traffic_percent is not None:
            human += f"\ntraffic: {describe_split(result.split)}"
    _emit(args, redactor, result.as_dict(), human)
    return 0


def _report_dry_run(
    args: argparse.Namespace, redactor: Redactor, settings: Any, result: Any
) -> int:
    """The plan and the manifests: human (the plan as YAML comments, then the manifests), json,
    or yaml (only the manifests, one multi-document stream for a GitOps repository; the plan
    goes to stderr). Secret values are redacted unless --show-secrets asked for them."""
    from kserve_predictor.kserve.manifests import redacted, to_yaml

    show = bool(getattr(args, "show_secrets", False))
    shown = result.manifests if show else [redacted(m) for m in result.manifests]
    client = result.dry_run == "client"
    plan = (
        f"# plan: deploy {settings.model_url} as {result.app_name} in {result.namespace}\n"
        f"# engine {result.engine} (protocol {result.protocol}), spec style {result.spec_style}\n"
        f"# converted layout: {result.storage_uri}\n"
        + _plan_compatibility(result.compatibility)
        + _plan_options(settings.options)
        + (
            "# dry run (client): rendered from the model's metadata; no kubeconfig read, no "
            "Kubernetes or FuseML request made\n"
            + "".join(f"# not checked: {item}\n" for item in result.not_checked)
            if client
            else "# dry run (server): checked by the cluster's dry-run apply\n"
        )
        + "# nothing was written (dry run)\n"
    )
    # Asked for explicitly, the Secret's values are printed; every other mask stays.
    mask = redactor.without(settings.secrets()) if show else redactor
    if args.output == "yaml":
        for line in plan.splitlines():
            log.info("%s", line.removeprefix("# "))
        print(mask(to_yaml(shown, redact_secrets=False).rstrip("\n")))
    elif args.output == "json":
        data = {**result.as_dict(), "manifests": shown}
        print(mask(json.dumps(data, indent=2, sort_keys=True)))
    else:
        print(mask(plan + to_yaml(shown, redact_secrets=False).rstrip("\n")))
    return 0


def _plan_options(options: Any) -> str:
    from kserve_predictor.settings.serving import described

    given = described(options)
    return "".join(f"# {name}: {json.dumps(value)}\n" for name, value in given.items())


def _plan_compatibility(c: dict[str, Any] | None) -> str:
    if not c:
        return ""
    line = f"# compatibility: {c['status']} on {c['runtime']} ({c['image']})"
    return line + "".join(f"\n#   - {p}" for p in c["problems"]) + "\n"


def cmd_serve(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.local.target import open_foreground

    name = _checked_name(args.name or _name_from_url(args.model_url), "--name")
    server = open_foreground(
        args.model_url,
        args.predictor,
        name,
        args.host,
        args.port,
        _s3_settings(redactor),
        args.workers,
    )
    data = server.as_dict()
    human = (
        f"serving {data['model']} as {name} ({data['engine']}, {data['protocol']}) "
        f"from {data['folder']}\nprediction URL: {server.url}"
    )
    if server.curl:
        human += "\ntry it:\n  " + server.curl
    _emit(args, redactor, data, human)  # the port is bound: the URL accepts connections now
    sys.stdout.flush()
    server.run()
    return 0


def _name_from_url(url: str) -> str:
    """A readable default model name: the registered name, else the model folder's name."""
    from kserve_predictor.naming import sanitize

    parts = [
        p for p in url.replace("models:/", "").split("@")[0].replace("\\", "/").split("/") if p
    ]
    if url.startswith("models:/") and parts:
        return sanitize(parts[0])
    parts = [
        p
        for p in parts
        if p not in ("artifacts", "model", "file:", "s3:") and not p.startswith("m-")
    ]
    return sanitize(parts[-1]) if parts else "model"


def _checked_name(name: str, source: str) -> str:
    from kserve_predictor.naming import check_app_name

    return check_app_name(name.strip(), source)


def cmd_deploy_local(args: argparse.Namespace, redactor: Redactor, name: str) -> int:
    from kserve_predictor.errors import UsageError
    from kserve_predictor.local.target import LocalSettings, deploy_local
    from kserve_predictor.settings.groups import parse_bool

    if args.dry_run:
        raise UsageError(
            "--dry-run applies to --target kserve; --target local writes only local files"
        )
    from kserve_predictor.settings.serving import NAMES, spelling_for_flag

    for flag, value in (
        ("--resources-limits", args.resources_limits),
        ("--runtime-version", args.runtime_version),
        *((spelling_for_flag(n), getattr(args, n, None)) for n in NAMES),
    ):
        if value is not None:
            raise UsageError(
                f"{flag} applies to --target kserve only; a local server runs with this "
                "machine's resources and installed libraries"
            )
    verify = os.environ.get("KSERVE_PREDICTOR_FUSEML_VERIFY_TLS")
    settings = LocalSettings(
        model_url=args.model,
        app_name=name,
        predictor=args.predictor,
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        smoke_test=args.smoke_test,
        workers=args.workers,
        fuseml_url=args.fuseml_url or None,
        fuseml_verify_tls=parse_bool("KSERVE_PREDICTOR_FUSEML_VERIFY_TLS", verify, True),
        workflow=args.workflow,
        s3=_s3_settings(redactor),
    )
    result = deploy_local(settings)
    app = result.app
    human = f"{name} serving locally (pid {app.pid}, {app.engine}, {app.protocol})"
    if result.replaced is not None:
        human += f"; replaced pid {result.replaced}"
    if result.smoke_ms is not None:
        human += f"\nsmoke test: {result.smoke_rows} rows answered in {result.smoke_ms:.1f} ms"
    _emit(args, redactor, result.as_dict(), human + "\n" + app.prediction_url)
    return 0


def cmd_run(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.interfaces.step import action_from_env, settings_from_env

    action = action_from_env()
    if action != "deploy":
        return _run_rollout(args, redactor, action)
    settings = settings_from_env()
    namespace = settings.namespace or "the kubeconfig context's namespace"
    log.info("deploying %s as %s in %s", settings.model_url, settings.app_name, namespace)
    return _deploy_and_report(args, redactor, settings)


def _run_rollout(args: argparse.Namespace, redactor: Redactor, action: str) -> int:
    """The step with FUSEML_ACTION=promote/rollback: on FUSEML_APP_NAME, output its URL."""
    from kserve_predictor.interfaces.step import rollout_from_env, write_result

    target = rollout_from_env()
    outcome = _rollout(action, target.cluster, target.namespace, target.name,
                       target.workflow, target.force, target.timeout)  # fmt: skip
    path = write_result(outcome.url) if outcome.url else None
    if path:
        log.debug("wrote the URL to %s", path)
    _emit(args, redactor, outcome.as_dict(), outcome.message)
    return 0


def _rollout(
    action: str, cluster: Any, namespace: str | None, name: str, workflow: str, force: bool,
    timeout: float,
) -> Any:  # fmt: skip
    from kserve_predictor.ops import rollout

    run = rollout.promote if action == "promote" else rollout.rollback
    return run(cluster, namespace or cluster.default_namespace, name, workflow, force, timeout)


def cmd_rollout(args: argparse.Namespace, redactor: Redactor) -> int:
    outcome = _rollout(args.command, _cluster(args), args.namespace, args.name, args.workflow,
                       args.force, args.timeout)  # fmt: skip
    name = f"{outcome.namespace}/{outcome.name}"
    human = outcome.message if not outcome.changed else f"{name} {outcome.message}"
    _emit(args, redactor, outcome.as_dict(), human)
    return 0


def cmd_deploy(args: argparse.Namespace, redactor: Redactor) -> int:
    from pathlib import Path

    from kserve_predictor.errors import UsageError
    from kserve_predictor.naming import Origin, check_app_name
    from kserve_predictor.settings.groups import DeploySettings, NetworkSettings
    from kserve_predictor.settings.serving import from_args

    origin = Origin.from_codeset_dir(Path.cwd(), args.workflow or "")
    if args.app_name is not None:
        name, stable = check_app_name(args.app_name.strip(), "--app-name"), True
    elif origin.project and origin.codeset:
        name, stable = origin.default_app_name(args.namespace)
    else:
        raise UsageError("--app-name is required outside a FuseML codeset; e.g. --app-name iris")
    if args.target == "local":
        return cmd_deploy_local(args, redactor, name)
    if args.workers is not None:
        raise UsageError(
            "--workers applies to --target local; on KServe the runtime sizes its workers "
            "(the project's runtime: one per CPU of the pod's limit)"
        )
    if args.show_secrets and not args.dry_run:
        raise UsageError(
            "--show-secrets applies to --dry-run (it shows the Secret's values in the printed "
            "manifests); a deployment prints no manifests"
        )
    network = NetworkSettings.from_env()
    settings = DeploySettings(
        model_url=args.model,
        predictor=args.predictor,
        app_name=name,
        stable_name=stable,
        runtime_version=args.runtime_version,
        resources_limits=args.resources_limits,
        namespace=args.namespace or "",
        workflow=args.workflow or "",
        project=origin.project,
        codeset=origin.codeset,
        timeout=args.timeout,
        spec_style=args.spec_style,
        dry_run=args.dry_run or False,
        force=args.force,
        fuseml_url=args.fuseml_url or None,
        fuseml_source=_fuseml_source(args),
        fuseml_verify_tls=network.fuseml_verify_tls,
        s3=_s3_settings(redactor),
        kubeconfig=args.kubeconfig,
        context=args.context,
        k8s_verify_tls=network.k8s_verify_tls and not args.insecure_skip_tls_verify,
        retry_seconds=network.retry_seconds,
        smoke_test=args.smoke_test,
        runtime_libraries=args.runtime_libraries,
        allow_incompatible=args.allow_incompatible,
        options=from_args(args),
    )
    return _deploy_and_report(args, redactor, settings)


def _fuseml_source(args: argparse.Namespace) -> str:
    """Where --fuseml-url's value came from: the flag, or FUSEML_SERVER_URL (its default)."""
    given = os.environ.get("FUSEML_SERVER_URL", "")
    return "FUSEML_SERVER_URL" if args.fuseml_url == given else "--fuseml-url"


def _cluster_settings(args: argparse.Namespace) -> Any:
    """How to reach the cluster of --kubeconfig/--context, with the retry and TLS settings every
    command reads from the environment."""
    from kserve_predictor.kserve.client import ClusterSettings
    from kserve_predictor.settings.groups import NetworkSettings

    network = NetworkSettings.from_env()
    verify = network.k8s_verify_tls and not args.insecure_skip_tls_verify
    return ClusterSettings(args.kubeconfig, args.context, verify, network.retry_seconds)


def _cluster(args: argparse.Namespace) -> Any:
    """The cluster of --kubeconfig/--context."""
    from kserve_predictor.kserve.client import connect

    return connect(_cluster_settings(args))


def cmd_status(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.local.target import describe, list_apps
    from kserve_predictor.ops.lifecycle import status

    if args.name is None:  # the local registry
        apps = [describe(app) for app in list_apps()]
        lines = [
            f"{a['name']:<24} {'running' if a['running'] else 'stopped':<8} {a['engine']:<10} {a['prediction_url']}"
            for a in apps
        ]
        _emit(args, redactor, {"local": apps}, "\n".join(lines) or "no local deployments")
        return 0
    info = status(
        args.name, args.target, args.namespace, _cluster_settings(args), args.fuseml_url or None
    )
    if info["target"] == "local":
        lines = [
            f"name:            {info['name']} (local, pid {info['pid']})",
            f"ready:           {info['running']}",
            f"engine:          {info['engine']} (protocol {info['protocol']})",
            f"workers:         {info['workers']}",
            f"model:           {info['model']}",
            f"prediction URL:  {info['prediction_url']}",
            f"log:             {info['log']}",
        ]
    else:
        lines = [
            f"name:            {info['name']} ({info['namespace']})",
            f"ready:           {info['ready']}"
            + (f" ({info['problem']})" if info["problem"] else ""),
            f"engine:          {info['engine'] or 'unknown'} (protocol {info['protocol']})",
            f"storage:         {info['storage_uri']}",
            f"mode:            {info['deployment_mode'] or 'not reported'}",
            f"prediction URL:  {info['prediction_url'] or '-'}",
            f"FuseML:          {info['fuseml'] or 'not registered'}",
        ]
        lines += _human_split(info.get("split"))
    _emit(args, redactor, info, "\n".join(lines))
    return 0 if info["ready"] else 1


def _human_split(view: dict[str, Any] | None) -> list[str]:
    if not view:
        return []
    percent = view["canary_traffic_percent"]
    lines = [
        "canary:          "
        + (f"{percent}% asked (canaryTrafficPercent)" if percent is not None else "none"),
        f"revisions:       latest {view['latest_created_revision']}, ready "
        f"{view['latest_ready_revision'] or '-'}, rolled out {view['latest_rolledout_revision'] or '-'}",
        "traffic:" + ("" if view["traffic"] else "         none routed yet"),
    ]
    for t in view["traffic"]:
        lines.append(
            f"  {t['percent']:>3}% {t['revision']:<28} {t['role']:<9} "
            f"{'ready' if t['ready'] else 'not ready':<10}{t['storage_uri'] or '(model not recorded)'}"
        )
    if view["previous_storage_uri"]:
        lines.append(f"previous model:  {view['previous_storage_uri']}")
    return lines


def cmd_sync(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.sync.command import run

    states = run(args, _cluster(args))
    if states is None:  # served until stopped
        return 0
    human = "\n".join(
        f"{s['namespace']}/{s['app']}: {s['model']}@{s['alias']} wanted {s['wanted'] or '-'}, "
        f"served {s['served'] or '-'}: {s['state']}"
        + (f" ({s['message']})" if s["message"] else "")
        for s in states
    )
    _emit(args, redactor, {"entries": states}, human)
    return 0 if all(s["state"] == "in-sync" for s in states) else 1


def cmd_gc(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.layouts.gc import bucket_of, collect, parse_duration

    grace = parse_duration(args.grace_period)
    location = _location(args.model_url, redactor)
    bucket_of(location)  # S3 only: checked before the cluster is asked anything
    result = collect(location, _cluster(args), grace, args.namespace, args.dry_run)
    _emit(args, redactor, result.as_dict(), _human_gc(result))
    return 0


def _human_gc(result: Any) -> str:
    lines = [f"layouts of {result.model}:"] if result.layouts else []
    for use in result.layouts:
        verb = "remove" if use.remove else "keep"
        lines.append(f"  {verb:<7}{use.name + '/':<36}{use.reason}")
    if result.unchecked:
        lines.append(
            "cannot list InferenceServices in "
            + ", ".join(result.unchecked)
            + ": every layout kept; grant the ClusterRole fuseml-kserve-predictor-gc "
            "(deploy/rbac.yaml) or name the namespaces that may use the model with --namespace"
        )
    going = [u for u in result.layouts if u.remove]
    if result.dry_run:
        lines.append(f"would remove {len(going)} layout(s); nothing was removed (dry run)")
    else:
        lines.append(f"removed {len(result.removed)} layout(s)")
    return "\n".join(lines)


def cmd_delete(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.ops.lifecycle import delete

    removed = delete(
        args.name,
        args.target,
        args.namespace,
        _cluster_settings(args),
        args.fuseml_url or None,
        workflow=args.workflow,
        force=args.force,
        collect_layout=_s3_settings(redactor) if args.gc else None,
    )
    human = (
        "\n".join(f"deleted {item}" for item in removed) or f"nothing named {args.name} to delete"
    )
    _emit(args, redactor, {"deleted": removed}, human)
    return 0


def cmd_install_runtime(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.ops.runtime_install import install_runtime

    stored = install_runtime(_cluster(args), args.namespace, args.image)
    meta = stored.get("metadata") or {}
    where = f"in namespace {args.namespace}" if args.namespace else "cluster-wide"
    data = {
        "kind": stored.get("kind"),
        "name": meta.get("name"),
        "namespace": args.namespace,
        "image": args.image,
    }
    _emit(
        args,
        redactor,
        data,
        f"installed {data['kind']} {data['name']} ({where}), image {args.image}",
    )
    return 0


# --- parser -----------------------------------------------------------------------------


# fmt: off  (a table of flags reads best one per line)
def _parser() -> argparse.ArgumentParser:
    from kserve_predictor.engines import AUTO, ENGINES

    engines = f"{AUTO} (default) or one of: {', '.join(ENGINES)}"
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
    add(
        "--kubeconfig", default=None, help="kubeconfig path (default: in-cluster, then $KUBECONFIG)"
    )
    add("--context", default=None, help="kubeconfig context (default: its current-context)")
    add(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="do not verify the API server's certificate",
    )

    cluster = argparse.ArgumentParser(add_help=False, parents=[kube])
    add = cluster.add_argument
    add(
        "--namespace",
        "-n",
        default=os.environ.get("FUSEML_ENV_WORKFLOW_NAMESPACE") or None,
        help="default: the kubeconfig context's namespace",
    )
    add(
        "--fuseml-url",
        default=os.environ.get("FUSEML_SERVER_URL", ""),
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
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
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
    add(
        "--model",
        required=True,
        help="model URL (s3://…, models:/…, runs:/…; a local folder with --target local)",
    )
    add("--predictor", default=AUTO, help=engines)
    add("--app-name", default=None, help="application and InferenceService name")
    add("--runtime-version", default=None, help="runtime image tag")
    add(
        "--resources-limits",
        default=None,
        help="YAML/JSON mapping merged over the default limits, e.g. '{nvidia.com/gpu: 1}'",
    )
    add(
        "--workflow",
        default=os.environ.get("FUSEML_ENV_WORKFLOW_NAME", ""),
        help="FuseML workflow name (labels, registration)",
    )
    add(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for readiness (default 600); --target local: for the server to start",
    )
    add(
        "--spec-style",
        choices=("auto", "model", "legacy"),
        default="auto",
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
    add(
        "--runtime-libraries",
        default=os.environ.get("FUSEML_RUNTIME_LIBRARIES") or None,
        help="what the runtime image contains, e.g. 'scikit-learn==1.9.1,numpy==2.4.6'",
    )
    add(
        "--allow-incompatible",
        action="store_true",
        help="deploy even if the runtime is known not to serve the model correctly",
    )
    add(
        "--force",
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
    add("--host", default="127.0.0.1", help="--target local: address to bind (default 127.0.0.1)")
    add(
        "--port",
        type=int,
        default=None,
        help="--target local: port (default: the running server's on a redeploy, else a free one)",
    )
    add("--workers", type=int, default=None, help="--target local: " + WORKERS_HELP)
    add(
        "--no-smoke-test",
        dest="smoke_test",
        action="store_false",
        help="skip sending the input example after deploying",
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
        p.add_argument(
            "--timeout", type=float, default=600.0,
            help="seconds to wait for each traffic change (default 600)",
        )  # fmt: skip
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
        help="the entries to keep (YAML; README: Follow a registry alias)",
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
    parser.add_argument(
        "--workflow",
        default=os.environ.get("FUSEML_ENV_WORKFLOW_NAME", ""),
        help=f"{verb} only if NAME belongs to this FuseML workflow (default: any of ours)",
    )
    parser.add_argument(
        "--force",
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


if __name__ == "__main__":
    sys.exit(main())
