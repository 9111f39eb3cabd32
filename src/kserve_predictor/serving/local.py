"""The local target: detect, convert and serve a model on this machine, in the foreground
(``serve``) or as a managed background process (``deploy --target local``).

Background servers are recorded in ``$KSERVE_PREDICTOR_HOME/apps/<name>.json`` (pid, port, URL),
which ``status`` lists and ``delete`` uses to stop them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..convert import convert, converted_prefix
from ..detect import Detection, detect
from ..engines import AUTO, ENGINES, Engine
from ..errors import ExternalError, UsageError
from ..modelurl import resolve
from ..settings import S3Settings
from ..store.local import LocalStore
from .cache import cache_folder, home, sync

log = logging.getLogger(__name__)


class LocalServerError(ExternalError):
    """The local model server did not start or does not answer."""


@dataclass(frozen=True)
class LocalLayout:
    """A converted layout on local disk, ready to be served."""

    detection: Detection
    engine: Engine
    folder: Path
    name: str
    fetched: list[str]


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

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def prepare(model_url: str, predictor: str, name: str, s3: S3Settings) -> LocalLayout:
    """Detect and convert like the KServe path, then bring the layout to local disk.

    With ``auto``, a model no KServe runtime loads as logged (skops sklearn, native Keras) is
    served through MLflow's pyfunc locally, since that needs no conversion of model bytes.
    """
    location = resolve(model_url, s3)
    detection = detect(location, predictor)
    engine = detection.engine
    if engine is None and (predictor or AUTO) == AUTO:
        log.warning("%s; serving it locally through mlflow.pyfunc instead", detection.problem)
        engine = ENGINES["mlflow"]
    if engine is None:
        detection.require_engine()
        raise AssertionError("unreachable")
    prefix = converted_prefix(location, detection.info, engine, name)
    convert(location, detection.info, engine, name)
    if isinstance(location.store, LocalStore):
        return LocalLayout(detection, engine, location.store.root / prefix, name, [])
    folder = cache_folder(location.url, engine.name)
    fetched = sync(location.store, prefix, folder)
    return LocalLayout(detection, engine, folder, name, fetched)


def prediction_path(engine: Engine, name: str) -> str:
    served = engine.served_model_name(name)
    return (
        f"/v1/models/{served}:predict" if engine.protocol == "v1" else f"/v2/models/{served}/infer"
    )


def check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UsageError(
                f"port {port} on {host} is in use ({e.strerror}); pass another --port"
            ) from e


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


# --- the registry of background servers -------------------------------------------------


def _apps_dir() -> Path:
    return home() / "apps"


def load_app(name: str) -> LocalApp | None:
    path = _apps_dir() / f"{name}.json"
    try:
        return LocalApp(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def list_apps() -> list[LocalApp]:
    folder = _apps_dir()
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return [app for app in (load_app(n) for n in names) if app is not None]


def is_running(app: LocalApp) -> bool:
    """Is the recorded pid alive and still our model server (not a recycled pid)?"""
    try:
        cmdline = Path(f"/proc/{app.pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        try:
            os.kill(app.pid, 0)
        except OSError:
            return False
        return True
    return (
        b"kserve_predictor.serving.server" in cmdline and f"--name {app.name}".encode() in cmdline
    )


def start_background(
    layout: LocalLayout, host: str, port: int, model_url: str, timeout: float = 120.0
) -> LocalApp:
    """Start the server as a detached process, wait until the model is ready, record it."""
    existing = load_app(layout.name)
    if existing is not None and is_running(existing):
        stop(existing)
    check_port_free(host, port)
    apps = _apps_dir()
    apps.mkdir(parents=True, exist_ok=True)
    log_path = apps / f"{layout.name}.log"
    command = [
        sys.executable, "-m", "kserve_predictor.serving.server",
        "--engine", layout.engine.name, "--folder", str(layout.folder),
        "--name", layout.name, "--host", host, "--port", str(port),
    ]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    app = LocalApp(
        name=layout.name,
        pid=process.pid,
        host=host,
        port=port,
        engine=layout.engine.name,
        protocol=layout.engine.protocol,
        model=model_url,
        folder=str(layout.folder),
        log=str(log_path),
        prediction_url=f"http://{host}:{port}{prediction_path(layout.engine, layout.name)}",
        started=time.time(),
    )
    try:
        wait_until_ready(app, process, timeout)
    except BaseException:
        if process.poll() is None:
            process.terminate()
        raise
    (apps / f"{layout.name}.json").write_text(json.dumps(asdict(app), indent=1))
    return app


def wait_until_ready(app: LocalApp, process: subprocess.Popen[bytes], timeout: float) -> None:
    import requests

    ready_url = f"{app.base_url}/v2/models/{ENGINES[app.engine].served_model_name(app.name)}/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalServerError(
                f"the local model server for {app.name} exited: {_last_error(Path(app.log))}"
            )
        try:
            if requests.get(ready_url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise LocalServerError(
        f"the local model server for {app.name} was not ready after {timeout:.0f} s; see {app.log}"
    )


def _last_error(log_path: Path) -> str:
    try:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("error: ") or "Error" in line]
    return (errors or lines or ["no output"])[-1].removeprefix("error: ")[:500]


def stop(app: LocalApp, timeout: float = 15.0) -> bool:
    """Stop a background server and forget it; False if it was not running."""
    running = is_running(app)
    if running:
        try:
            os.killpg(app.pid, signal.SIGTERM)
        except ProcessLookupError:
            running = False
        deadline = time.monotonic() + timeout
        while running and is_running(app) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_running(app):
            os.killpg(app.pid, signal.SIGKILL)
    (_apps_dir() / f"{app.name}.json").unlink(missing_ok=True)
    return running


def describe(app: LocalApp) -> dict[str, Any]:
    return {**asdict(app), "running": is_running(app), "url": app.base_url}


@dataclass
class LocalDeployment:
    """What `deploy --target local` did."""

    app: LocalApp
    layout: LocalLayout
    smoke_rows: int | None = None
    smoke_ms: float | None = None
    registered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "app_name": self.app.name,
            "target": "local",
            "engine": self.app.engine,
            "protocol": self.app.protocol,
            "prediction_url": self.app.prediction_url,
            "pid": self.app.pid,
            "port": self.app.port,
            "registered": self.registered,
            "smoke_test": None
            if self.smoke_ms is None
            else {"rows": self.smoke_rows, "latency_ms": round(self.smoke_ms, 1)},
        }


def deploy_local(
    model_url: str,
    predictor: str,
    name: str,
    s3: S3Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    smoke_test: bool = True,
    fuseml_url: str | None = None,
    workflow: str = "",
) -> LocalDeployment:
    """The deploy flow with the local runtime in place of KServe: convert, start the managed
    server, smoke-test it, register it with FuseML when a FuseML server is given."""
    from ..smoke import build_request, example_rows, send

    fuseml = None
    if fuseml_url:
        from ..fuseml import FuseMLClient

        fuseml = FuseMLClient(fuseml_url)
        fuseml.ping()
    layout = prepare(model_url, predictor, name, s3)
    app = start_background(layout, host, port or free_port(host), model_url)
    result = LocalDeployment(app, layout)
    info = layout.detection.info
    rows = example_rows(layout.detection.location, info) if smoke_test else None
    if rows is not None:
        body = build_request(rows, layout.engine.protocol, info)
        smoke = send(app.prediction_url, body, len(rows), layout.engine.protocol)
        result.smoke_rows, result.smoke_ms = smoke.rows, smoke.latency_ms
    if fuseml is not None:
        from ..fuseml import Application

        fuseml.register(
            Application(
                name=name,
                description=f"local {layout.engine.name} predictor for {info.url}",
                url=app.prediction_url,
                workflow=workflow or "local",
                k8s_namespace="local",
                k8s_resources=[],  # nothing in Kubernetes to clean up
            )
        )
        result.registered = True
    return result
