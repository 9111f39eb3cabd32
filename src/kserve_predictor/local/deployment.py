"""The local target's two entry points: ``deploy_local`` (a managed background server, the
deploy flow with the local runtime in place of KServe) and ``open_foreground`` (``serve``).

A redeploy of a running name is safe: the new server is started beside the old one (on the same
port, through SO_REUSEPORT), health-checked and smoke-tested through its private control
socket, and only then is the old one stopped; if the new one fails, the old one keeps serving
and the error says so. A lock per name serialises deploys of the same name.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from kserve_predictor.errors import KservePredictorError, UsageError
from kserve_predictor.local import supervisor
from kserve_predictor.local.layout import LocalLayout, build_layout, choose
from kserve_predictor.local.network import check_host, check_port, check_port_free, free_port
from kserve_predictor.local.registry import (
    LocalApp,
    deploy_lock,
    failed_log,
    forget_app,
    load_app,
    save_app,
    server_log,
    url_host,
)
from kserve_predictor.naming import check_app_name
from kserve_predictor.settings.groups import DEFAULT_START_TIMEOUT, LocalSettings, S3Settings

log = logging.getLogger("kserve_predictor.serving.deployment")  # stable log channel, not the path

MAX_WORKERS = 64  # each worker holds its own copy of the model


@dataclass
class LocalDeployment:
    """What ``deploy --target local`` did."""

    app: LocalApp
    layout: LocalLayout
    replaced: int | None = None
    """The pid of the server this deploy replaced, if one was running."""
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
            "workers": self.app.workers,
            "model": self.app.model,
            "log": self.app.log,
            "replaced_pid": self.replaced,
            "registered": self.registered,
            "smoke_test": None
            if self.smoke_ms is None
            else {"rows": self.smoke_rows, "latency_ms": round(self.smoke_ms, 1)},
        }


def check_options(
    host: str,
    port: int | None,
    timeout: float = DEFAULT_START_TIMEOUT,
    workers: int | None = None,
) -> str:
    """Usage errors of the local target's options, before anything is read or made."""
    if port is not None:
        check_port(port)
    if not timeout > 0:
        raise UsageError(f"--timeout {timeout} must be a positive number of seconds")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise UsageError(
            f"--workers {workers} must be a number of server processes from 1 to {MAX_WORKERS}"
        )
    return check_host(host)


def worker_count(workers: int | None) -> int:
    from kserve_predictor.modelserver.workers import usable_cpus

    return workers if workers is not None else usable_cpus()


def deploy_local(settings: LocalSettings) -> LocalDeployment:
    """Detect, build the layout in the local cache, start (or replace) the managed server,
    smoke-test it and register it with FuseML when a FuseML server is given."""
    name = check_app_name(settings.app_name)
    host = check_options(settings.host, settings.port, settings.timeout, settings.workers)
    from kserve_predictor.fuseml.client import connect as fuseml_client

    fuseml = fuseml_client(settings.fuseml)
    if fuseml is not None:
        fuseml.ping()
    detection, engine = choose(settings.model_url, settings.predictor, settings.s3)

    with deploy_lock(name):
        old = load_app(name)
        running = old if old is not None and supervisor.is_running(old) else None
        if old is not None and running is None:
            forget_app(old)  # a stale record: its server is gone
        port = settings.port or (running.port if running else free_port(host))
        keeps = (
            f" (the running {name}, pid {running.pid}, keeps serving {running.prediction_url})"
            if running
            else ""
        )
        if not (running and running.port == port and running.host == host):
            check_port_free(host, port, keeps)
        layout = build_layout(detection, engine, name)
        app, started, smoke = _start_checked(layout, host, port, settings, keeps)
        save_app(app)  # from here on `status` and `delete` see the new server
        started.discard_control()
        if running is not None:
            supervisor.stop_process(running)
            forget_app(running)
            log.info("replaced %s (pid %d) by pid %d", name, running.pid, app.pid)
        result = LocalDeployment(app, layout, running.pid if running else None)
        if smoke is not None:
            result.smoke_rows, result.smoke_ms = smoke
        if fuseml is not None:
            _register(fuseml, settings, layout, app)
            result.registered = True
    return result


def _start_checked(
    layout: LocalLayout, host: str, port: int, settings: LocalSettings, keeps: str
) -> tuple[LocalApp, supervisor.Started, tuple[int, float] | None]:
    """Start the new server, wait until it is ready and answers the input example; on any
    failure stop it, keep its log for reading, and say that the old server keeps serving."""
    name, engine = layout.name, layout.engine
    log_path = server_log(name, secrets.token_hex(4))
    workers = worker_count(settings.workers)
    started = supervisor.start(engine.name, layout.folder, name, host, port, log_path, workers)
    app = LocalApp(
        name=name,
        pid=started.process.pid,
        host=host,
        port=port,
        engine=engine.name,
        protocol=engine.protocol,
        model=layout.model,
        folder=str(layout.folder),
        log=str(log_path),
        prediction_url=f"http://{url_host(host)}:{port}{engine.prediction_path(name)}",
        started=time.time(),
        workers=workers,
    )
    try:
        supervisor.wait_until_ready(started, name, engine.served_model_name(name), settings.timeout)
        smoke = _smoke_test(started, layout, app) if settings.smoke_test else None
    except KservePredictorError as e:
        supervisor.kill(started)
        log_path.replace(failed_log(name))
        raise type(e)(f"{e}; log: {failed_log(name)}{keeps}") from e
    except BaseException:
        supervisor.kill(started)
        log_path.unlink(missing_ok=True)
        raise
    return app, started, smoke


def _smoke_test(
    started: supervisor.Started, layout: LocalLayout, app: LocalApp
) -> tuple[int, float] | None:
    """The input example, sent to the new server itself (through its control socket)."""
    import json

    from kserve_predictor.modelserver.smoke import build_request, check_answer, example_rows

    info = layout.detection.info
    rows = example_rows(layout.detection.location, info)
    if rows is None:
        log.info("the model has no input example: no smoke test")
        return None
    protocol = layout.engine.protocol
    body = build_request(rows, protocol, info)
    served = layout.engine.served_model_name(layout.name)
    if protocol == "v2":
        status, text = supervisor.call(started.control, "GET", f"/v2/models/{served}")
        body = name_inputs(body, json.loads(text).get("inputs") if status == 200 else None)
    path = layout.engine.prediction_path(layout.name)
    start = time.perf_counter()
    status, text = supervisor.call(started.control, "POST", path, body)
    latency = (time.perf_counter() - start) * 1000
    check_answer(app.prediction_url, status, text, len(rows), protocol)
    return len(rows), latency


def name_inputs(body: dict[str, Any], declared: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Like any client of Triton: one V2 input gets the name and datatype the model's metadata
    declares (the MLflow signature often names none)."""
    if declared and len(declared) == 1 and len(body.get("inputs", ())) == 1:
        body["inputs"][0].update(name=declared[0]["name"], datatype=declared[0]["datatype"])
    return body


def _register(fuseml: Any, settings: LocalSettings, layout: LocalLayout, app: LocalApp) -> None:
    from kserve_predictor.fuseml.client import Application

    fuseml.register_serving(
        Application(
            name=app.name,
            description=f"local {layout.engine.name} predictor for {layout.detection.info.url}",
            url=app.prediction_url,
            workflow=settings.workflow or "local",
            k8s_namespace="local",
            k8s_resources=[],  # nothing in Kubernetes to clean up
        ),
        "server",
    )


# --- serve: the foreground server ----------------------------------------------------------


@dataclass
class ForegroundServer:
    """A loaded model and its bound socket; ``run()`` serves until interrupted."""

    layout: LocalLayout
    model: Any
    sock: socket.socket
    host: str
    port: int
    url: str
    curl: str | None
    workers: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.layout.name,
            "model": self.layout.model,
            "engine": self.layout.engine.name,
            "protocol": self.layout.engine.protocol,
            "folder": str(self.layout.folder),
            "prediction_url": self.url,
            "curl": self.curl,
            "workers": self.workers,
        }

    def run(self) -> None:
        from kserve_predictor.modelserver.server import serve
        from kserve_predictor.modelserver.workers import extra_workers

        layout = self.layout
        with extra_workers(self.workers, layout.engine.name, layout.folder, layout.name, self.sock):
            serve(self.model, self.host, self.port, sock=self.sock)


def open_foreground(
    model_url: str,
    predictor: str,
    name: str,
    host: str,
    port: int,
    s3: S3Settings,
    workers: int | None = None,
) -> ForegroundServer:
    """Check the options, build the layout, load the model and bind the port: after this the
    URL accepts connections, and ``run()`` answers them."""
    from kserve_predictor.modelserver.server import build_model, listen
    from kserve_predictor.modelserver.smoke import (
        build_request,
        curl_command,
        example_rows,
        signature_rows,
    )
    from kserve_predictor.modelserver.workers import share_cpus

    name = check_app_name(name, "--name")
    host = check_options(host, port, workers=workers)
    check_port_free(host, port)
    detection, engine = choose(model_url, predictor, s3)
    layout = build_layout(detection, engine, name)
    workers = worker_count(workers)
    share_cpus(workers)
    model = build_model(engine.name, layout.folder, name)
    model.load()
    try:
        sock = listen(host, port)
    except OSError as e:
        raise UsageError(
            f"port {port} on {host} is in use ({e.strerror}); pass another --port"
        ) from e
    url = f"http://{url_host(host)}:{port}{engine.prediction_path(name)}"
    info = detection.info
    rows = example_rows(detection.location, info) or signature_rows(info)
    curl = None
    if rows:
        body = build_request(rows, engine.protocol, info)
        if engine.protocol == "v2":
            body = name_inputs(body, model.get_input_types())
        curl = curl_command(url, body)
    return ForegroundServer(layout, model, sock, host, port, url, curl, workers)
