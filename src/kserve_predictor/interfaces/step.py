"""The FuseML step contract (DESIGN.md §2): environment in, Tekton result out."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kserve_predictor.errors import UsageError
from kserve_predictor.kserve.pod import pod_namespace
from kserve_predictor.naming import Origin, check_app_name
from kserve_predictor.settings import build, table
from kserve_predictor.settings.groups import (
    DEFAULT_FUSEML_SOURCE,
    DEFAULT_FUSEML_URL,
    DeploySettings,
    S3Settings,
)
from kserve_predictor.settings.serving import from_env as options_from_env

log = logging.getLogger("kserve_predictor.step")  # stable log channel, not the path
DEFAULT_RESULTS_DIR = "/tekton/results"
ACTIONS = ("deploy", "promote", "rollback")


def settings_from_env(
    env: Mapping[str, str] | None = None, workdir: Path | None = None
) -> DeploySettings:
    """Build the deployment from FUSEML_* variables and the codeset working directory."""
    env = os.environ if env is None else env
    workdir = workdir or Path.cwd()
    result_file(env)  # a bad TASK_RESULT must fail before anything is deployed
    cluster = build.cluster(table.from_env(("kubeconfig",), env)["kubeconfig"], env=env)
    values = table.from_env(("model_url", "app_name", "namespace", "workflow"), env)
    if not values["model_url"]:
        raise UsageError(
            "FUSEML_MODEL is empty; pass the trainer's model URL as the step's 'model' input"
        )
    origin = Origin.from_codeset_dir(workdir, values["workflow"])
    namespace = values["namespace"] or pod_namespace()
    if values["app_name"]:
        app_name, stable = check_app_name(values["app_name"], "FUSEML_APP_NAME"), True
    else:
        app_name, stable = origin.default_app_name(namespace)
    fuseml_url, fuseml_source = fuseml_server(env)
    values.update(table.from_env(build.DEPLOY_NAMES, env))  # checked in the table's order
    return build.deploy(
        values,
        app_name=app_name,
        stable_name=stable,
        namespace=namespace,
        project=origin.project,
        codeset=origin.codeset,
        fuseml=build.fuseml(fuseml_url, fuseml_source, env),
        s3=S3Settings.from_env(env),
        cluster=cluster,
        options=options_from_env(env),
    )


def fuseml_server(env: Mapping[str, str]) -> tuple[str | None, str]:
    """The FuseML server to register with, and where its URL came from: FUSEML_SERVER_URL;
    unset, FuseML's in-cluster default; set to an empty value, none (the step outside FuseML,
    in plain Tekton or Argo): the registration is skipped."""
    if "FUSEML_SERVER_URL" not in env:
        return DEFAULT_FUSEML_URL, DEFAULT_FUSEML_SOURCE
    url = env["FUSEML_SERVER_URL"].strip()
    if not url:
        log.info("FUSEML_SERVER_URL is empty: not registering the service with FuseML")
        return None, "FUSEML_SERVER_URL"
    return url, "FUSEML_SERVER_URL"


def action_from_env(env: Mapping[str, str] | None = None) -> str:
    """FUSEML_ACTION: what the step does; deploy (the default), promote or rollback."""
    env = os.environ if env is None else env
    action = env.get("FUSEML_ACTION", "").strip().lower() or "deploy"
    if action not in ACTIONS:
        raise UsageError(
            f"FUSEML_ACTION={action!r} is unknown; use deploy (the default), promote or rollback"
        )
    return action


@dataclass(frozen=True)
class RolloutTarget:
    """The InferenceService a promote/rollback step changes, and how."""

    cluster: Any
    namespace: str
    name: str
    workflow: str
    force: bool
    timeout: float


def rollout_from_env(env: Mapping[str, str] | None = None) -> RolloutTarget:
    """A promote/rollback step: FUSEML_APP_NAME names the service (the deploy step's)."""
    from kserve_predictor.kserve.connection import connect

    env = os.environ if env is None else env
    result_file(env)  # a bad TASK_RESULT must fail before anything is changed
    given = table.from_env(("app_name",), env)["app_name"]
    if not given:
        raise UsageError(
            "FUSEML_APP_NAME is empty; a promote/rollback step needs the name the deploy step "
            "used (give both steps the same app_name input)"
        )
    name = check_app_name(given, "FUSEML_APP_NAME")
    values = table.from_env(("timeout", "force", "kubeconfig", "namespace", "workflow"), env)
    cluster = connect(build.cluster(values["kubeconfig"], env=env))
    namespace = values["namespace"] or pod_namespace() or cluster.default_namespace
    return RolloutTarget(
        cluster, namespace, name, values["workflow"], values["force"], values["timeout"]
    )


def result_file(env: Mapping[str, str]) -> Path | None:
    """Where the step's Tekton result goes, if the step has one."""
    name = env.get("TASK_RESULT", "").strip()
    if not name:
        return None
    if "/" in name or name in (".", ".."):
        raise UsageError(f"TASK_RESULT={name!r} is not a file name; use e.g. prediction-url")
    folder = Path(env.get("KSERVE_PREDICTOR_RESULTS_DIR", "").strip() or DEFAULT_RESULTS_DIR)
    return folder / name


def write_result(url: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Write the prediction URL as the step's Tekton result, if the step has one."""
    path = result_file(os.environ if env is None else env)
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(url)  # Tekton results are read verbatim: no trailing newline
    except OSError as e:
        raise UsageError(f"cannot write the step result {path}: {e.strerror}") from e
    return path
