"""The settings groups built from what one interface read (table.parse's values), in one place
for the CLI, the FuseML step and the MLflow plugin: the cluster, FuseML and deploy settings,
and the rules between flags that do not depend on any system."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kserve_predictor.errors import UsageError
from kserve_predictor.settings import serving
from kserve_predictor.settings.groups import (
    ClusterSettings,
    DeploySettings,
    FuseMLSettings,
    NetworkSettings,
    S3Settings,
)
from kserve_predictor.settings.table import BY_NAME

DEPLOY_NAMES: tuple[str, ...] = (
    "model_url",
    "predictor",
    "runtime_version",
    "runtime_libraries",
    "allow_incompatible",
    "resources_limits",
    "timeout",
    "force",
    "smoke_test",
    "spec_style",
    "workflow",
)
"""The deploy group's settings every interface reads the same way (table.py spells them)."""


def cluster(
    kubeconfig: str | None,
    context: str | None = None,
    insecure: bool = False,
    env: Mapping[str, str] | None = None,
) -> ClusterSettings:
    """How to reach the cluster: the kubeconfig and context given, with the TLS and retry
    settings every command reads from the environment (``insecure``: --insecure-skip-tls-verify)."""
    network = NetworkSettings.from_env(env)
    verify = network.k8s_verify_tls and not insecure
    return ClusterSettings(kubeconfig, context, verify, network.retry_seconds)


def fuseml(
    url: str | None, source: str = "FUSEML_SERVER_URL", env: Mapping[str, str] | None = None
) -> FuseMLSettings | None:
    """The FuseML server at ``url`` (None or empty: none), with the TLS and retry settings
    every command reads from the environment (read, and checked, even when there is none)."""
    network = NetworkSettings.from_env(env)
    if not url:
        return None
    return FuseMLSettings(url, source, network.fuseml_verify_tls, network.retry_seconds)


def fuseml_flag(url: str | None, env: Mapping[str, str] | None = None) -> FuseMLSettings | None:
    """--fuseml-url's server; its source is the flag, or FUSEML_SERVER_URL (its default)."""
    env = os.environ if env is None else env
    variable = BY_NAME["fuseml_url"].env or ""
    source = variable if url == env.get(variable, "") else "--fuseml-url"
    return fuseml(url, source, env)


def deploy(
    values: Mapping[str, Any],
    *,
    app_name: str,
    stable_name: bool = True,
    namespace: str | None = None,
    project: str = "",
    codeset: str = "",
    s3: S3Settings,
    cluster: ClusterSettings,
    fuseml: FuseMLSettings | None = None,
    options: serving.ServingOptions | None = None,
    dry_run: bool | str = False,
) -> DeploySettings:
    """A deployment from the deploy group's ``values`` (any of DEPLOY_NAMES, parsed by
    table.parse in the interface's spelling) and the other groups."""
    given = {name: values[name] for name in DEPLOY_NAMES if name in values}
    return DeploySettings(
        **given,
        app_name=app_name,
        stable_name=stable_name,
        namespace=namespace or "",
        project=project,
        codeset=codeset,
        s3=s3,
        cluster=cluster,
        fuseml=fuseml,
        options=options or serving.ServingOptions(),
        dry_run=dry_run,
    )


def check_target_flags(args: Any) -> None:
    """The deploy flags that apply to one target only, refused on the other before anything
    is read."""
    if args.target == "local":
        if args.dry_run:
            raise UsageError(
                "--dry-run applies to --target kserve; --target local writes only local files"
            )
        for name in ("resources_limits", "runtime_version", *serving.NAMES):
            if getattr(args, name, None) is not None:
                flag = BY_NAME[name].flag if name in BY_NAME else serving.spelling_for_flag(name)
                raise UsageError(
                    f"{flag} applies to --target kserve only; a local server runs with this "
                    "machine's resources and installed libraries"
                )
        return
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
