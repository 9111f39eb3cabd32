"""One function per command: argparse's result → settings → one operation → render.

Settings come from settings/ (the table, its one parser and the groups' builders); the rules
between flags and the names derived from the model or the codeset live there and in naming.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from kserve_predictor.interfaces.cli import render
from kserve_predictor.interfaces.cli.render import emit
from kserve_predictor.redact import Redactor
from kserve_predictor.settings import build, table

log = logging.getLogger("kserve_predictor")


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


def _cluster_settings(args: argparse.Namespace) -> Any:
    """How to reach the cluster of --kubeconfig/--context."""
    return build.cluster(args.kubeconfig, args.context, args.insecure_skip_tls_verify)


def _cluster(args: argparse.Namespace) -> Any:
    """The cluster of --kubeconfig/--context."""
    from kserve_predictor.kserve.connection import connect

    return connect(_cluster_settings(args))


def cmd_detect(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.choice.detect import detect

    found = detect(
        _location(args.model_url, redactor),
        args.predictor,
        args.runtime_version,
        runtime_libraries=args.runtime_libraries,
    )
    data = found.as_dict()
    emit(args, redactor, data, render.detection(data))
    return 0


def cmd_convert(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.choice.detect import detect
    from kserve_predictor.layouts.convert import convert

    found = detect(_location(args.model_url, redactor), args.predictor, args.runtime_version)
    result = convert(
        found.location, found.info, found.require_engine(), args.name, render.progress(args)
    )
    emit(args, redactor, *render.conversion(result))
    return 0


def _deploy_and_report(args: argparse.Namespace, redactor: Redactor, settings: Any) -> int:
    from kserve_predictor.ops.deploy import deploy

    for secret in settings.secrets():
        redactor.add(secret)
    result = deploy(settings, progress=render.progress(args))
    if result.dry_run:
        render.dry_run(args, redactor, settings, result)
        return 0
    from kserve_predictor.interfaces.step import write_result

    written = write_result(result.prediction_url) if args.command == "run" else None
    if written:
        log.debug("wrote the prediction URL to %s", written)
    emit(args, redactor, result.as_dict(), render.deployment(args.command, settings, result))
    return 0


def cmd_serve(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.local.target import open_foreground
    from kserve_predictor.naming import check_app_name, name_from_url

    name = check_app_name((args.name or name_from_url(args.model_url)).strip(), "--name")
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
    emit(args, redactor, data, render.foreground(name, server, data))
    sys.stdout.flush()  # the port is bound: the URL accepts connections now
    server.run()
    return 0


def cmd_deploy(args: argparse.Namespace, redactor: Redactor) -> int:
    from pathlib import Path

    from kserve_predictor.naming import Origin, deploy_name

    origin = Origin.from_codeset_dir(Path.cwd(), args.workflow or "")
    name, stable = deploy_name(args.app_name, origin, args.namespace)
    build.check_target_flags(args)
    if args.target == "local":
        return _deploy_local(args, redactor, name)
    from kserve_predictor.settings.serving import from_args

    fuseml = build.fuseml_flag(args.fuseml_url)
    settings = build.deploy(
        table.from_flags(build.DEPLOY_NAMES, args),
        app_name=name,
        stable_name=stable,
        namespace=args.namespace,
        project=origin.project,
        codeset=origin.codeset,
        dry_run=args.dry_run or False,
        fuseml=fuseml,
        s3=_s3_settings(redactor),
        cluster=_cluster_settings(args),
        options=from_args(args),
    )
    return _deploy_and_report(args, redactor, settings)


def _deploy_local(args: argparse.Namespace, redactor: Redactor, name: str) -> int:
    from kserve_predictor.local.target import deploy_local
    from kserve_predictor.settings.groups import LocalSettings

    settings = LocalSettings(
        model_url=args.model_url,
        app_name=name,
        predictor=args.predictor,
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        smoke_test=args.smoke_test,
        workers=args.workers,
        fuseml=build.fuseml(args.fuseml_url),
        workflow=args.workflow,
        s3=_s3_settings(redactor),
    )
    result = deploy_local(settings)
    emit(args, redactor, result.as_dict(), render.local_deployment(name, result))
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
    emit(args, redactor, outcome.as_dict(), outcome.message)
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
    emit(args, redactor, outcome.as_dict(), human)
    return 0


def cmd_status(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.local.target import describe, list_apps
    from kserve_predictor.ops.lifecycle import status

    if args.name is None:  # the local registry
        apps = [describe(app) for app in list_apps()]
        emit(args, redactor, {"local": apps}, render.local_list(apps))
        return 0
    cluster, fuseml = _cluster_settings(args), build.fuseml_flag(args.fuseml_url)
    info = status(args.name, args.target, args.namespace, cluster, fuseml)
    emit(args, redactor, info, render.status(info))
    return 0 if info["ready"] else 1


def cmd_delete(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.ops.lifecycle import delete

    cluster, fuseml = _cluster_settings(args), build.fuseml_flag(args.fuseml_url)
    removed = delete(
        args.name,
        args.target,
        args.namespace,
        cluster,
        fuseml,
        workflow=args.workflow,
        force=args.force,
        collect_layout=_s3_settings(redactor) if args.gc else None,
    )
    emit(args, redactor, {"deleted": removed}, render.deleted(args.name, removed))
    return 0


def cmd_sync(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.sync.command import run

    states = run(args, _cluster(args))
    if states is None:  # served until stopped
        return 0
    emit(args, redactor, {"entries": states}, render.sync_states(states))
    return 0 if all(s["state"] == "in-sync" for s in states) else 1


def cmd_gc(args: argparse.Namespace, redactor: Redactor) -> int:
    from kserve_predictor.layouts.gc import bucket_of, collect, parse_duration

    grace = parse_duration(args.grace_period)
    location = _location(args.model_url, redactor)
    bucket_of(location)  # S3 only: checked before the cluster is asked anything
    result = collect(location, _cluster(args), grace, args.namespace, args.dry_run)
    emit(args, redactor, result.as_dict(), render.gc(result))
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
    human = f"installed {data['kind']} {data['name']} ({where}), image {args.image}"
    emit(args, redactor, data, human)
    return 0
