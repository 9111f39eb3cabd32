"""The local target in one import: the names the CLI and library users call.

The pieces have one job each: ``layout`` (model → layout in the local cache), ``registry``
(records of managed servers, the per-name lock), ``supervisor`` (server processes),
``deployment`` (the deploy flow and ``serve``), ``server`` and ``protocol`` (the model server).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kserve_predictor.errors import LocalServerError
from kserve_predictor.local.deployment import (
    ForegroundServer,
    LocalDeployment,
    check_options,
    deploy_local,
    open_foreground,
)
from kserve_predictor.local.layout import LocalLayout, prepare
from kserve_predictor.local.network import check_port_free, free_port
from kserve_predictor.local.registry import LocalApp, deploy_lock, forget_app, list_apps, load_app
from kserve_predictor.local.supervisor import is_running, stop_process
from kserve_predictor.settings.groups import LocalSettings

__all__ = [
    "ForegroundServer",
    "LocalApp",
    "LocalDeployment",
    "LocalLayout",
    "LocalServerError",
    "LocalSettings",
    "check_options",
    "check_port_free",
    "deploy_local",
    "describe",
    "free_port",
    "is_running",
    "list_apps",
    "load_app",
    "open_foreground",
    "prepare",
    "stop",
]


def stop(app: LocalApp, timeout: float = 15.0) -> bool:
    """Stop a background server and forget it (record and log); False if it was not running.

    Waits for a deploy of the same name in progress, then stops whatever that left recorded.
    """
    with deploy_lock(app.name):
        current = load_app(app.name)
        running = False
        for target in [app] + ([current] if current is not None and current.pid != app.pid else []):
            running = stop_process(target, timeout) or running
            forget_app(target)
    return running


def describe(app: LocalApp) -> dict[str, Any]:
    return {**asdict(app), "running": is_running(app), "url": app.base_url}
