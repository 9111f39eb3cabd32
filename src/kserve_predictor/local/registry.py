"""The registry of managed local servers: ``$KSERVE_PREDICTOR_HOME/apps/<name>.json``.

One record per name (pid, address, URL, log); ``status`` lists them and ``delete`` stops them.
``deploy_lock(name)`` serialises everything that changes the server of one name.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from kserve_predictor.local.cache import home

log = logging.getLogger("kserve_predictor.serving.registry")  # stable log channel, not the path


@dataclass
class LocalApp:
    """A managed background server, as recorded in the local registry."""

    name: str
    pid: int
    host: str
    port: int
    engine: str
    protocol: str
    model: str
    folder: str
    log: str
    prediction_url: str
    started: float
    workers: int = 1

    @property
    def base_url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"


def url_host(host: str) -> str:
    """The host as it goes in a URL: wildcards as loopback, IPv6 in brackets."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def apps_dir() -> Path:
    return home() / "apps"


def _record(name: str) -> Path:
    return apps_dir() / f"{name}.json"


def load_app(name: str) -> LocalApp | None:
    try:
        return LocalApp(**json.loads(_record(name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def list_apps() -> list[LocalApp]:
    folder = apps_dir()
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return [app for app in (load_app(n) for n in names) if app is not None]


def save_app(app: LocalApp) -> None:
    record = _record(app.name)
    partial = record.with_name(record.name + ".partial")
    partial.write_text(json.dumps(asdict(app), indent=1))
    partial.replace(record)  # status never reads half a record


def forget_app(app: LocalApp) -> None:
    """Remove the record (if it is still this server's) and the server's log files."""
    current = load_app(app.name)
    if current is not None and current.pid == app.pid:
        _record(app.name).unlink(missing_ok=True)
    Path(app.log).unlink(missing_ok=True)
    failed_log(app.name).unlink(missing_ok=True)


def server_log(name: str, token: str) -> Path:
    """Each started server logs to its own file, so a failed successor never clobbers the
    running server's log."""
    return apps_dir() / f"{name}.{token}.log"


def failed_log(name: str) -> Path:
    """Where the log of the last server that failed to start is kept, for the user to read."""
    return apps_dir() / f"{name}.failed.log"


@contextmanager
def deploy_lock(name: str) -> Iterator[None]:
    """Hold the lock of ``name``; a second deploy of the same name waits for the first."""
    folder = apps_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another deploy of %s is running; waiting for it to finish", name)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
