"""Start, health-check and stop the model server processes of managed local deployments.

A server is started as ``python -m kserve_predictor.modelserver.server`` in its own session, with
SO_REUSEPORT on its public port (so that a successor can bind the same port before it stops) and
a private Unix control socket, through which this very process is checked: with two servers on
one port, a request to the port may reach either.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kserve_predictor.errors import LocalServerError
from kserve_predictor.local.registry import LocalApp

log = logging.getLogger("kserve_predictor.serving.supervisor")  # stable log channel, not the path


@dataclass
class Started:
    """A server process that was started and has not been checked yet."""

    process: subprocess.Popen[bytes]
    log: Path
    control: Path

    def discard_control(self) -> None:
        """Forget the control socket once the server is the one recorded (it needs none)."""
        shutil.rmtree(self.control.parent, ignore_errors=True)


def start(
    engine: str, folder: Path, name: str, host: str, port: int, log_path: Path, workers: int = 1
) -> Started:
    control = Path(tempfile.mkdtemp(prefix="kserve-predictor-")) / "control.sock"  # 0700
    command = [
        sys.executable, "-m", "kserve_predictor.modelserver.server",
        "--engine", engine, "--folder", str(folder), "--name", name,
        "--host", host, "--port", str(port), "--reuse-port", "--control", str(control),
        "--workers", str(workers),
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Started(process, log_path, control)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.socket_path))
        self.sock = sock


def call(
    control: Path, method: str, path: str, body: Any = None, timeout: float = 30.0
) -> tuple[int, str]:
    """One HTTP request to a started server through its control socket: (status, text)."""
    connection = _UnixConnection(control, timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def wait_until_ready(started: Started, name: str, served: str, timeout: float) -> None:
    """Until the model of the started process answers ready; fails on exit or at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            raise LocalServerError(
                f"the local model server for {name} exited: {last_error(started.log)}"
            )
        try:
            if call(started.control, "GET", f"/v2/models/{served}/ready", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise LocalServerError(f"the local model server for {name} was not ready after {timeout:.0f} s")


def last_error(log_path: Path) -> str:
    try:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("error: ") or "Error" in line]
    return (errors or lines or ["no output"])[-1].removeprefix("error: ")[:500]


def kill(started: Started, timeout: float = 15.0) -> None:
    """Stop a started server that will not be kept."""
    if started.process.poll() is None:
        _signal_group(started.process.pid, signal.SIGTERM)
        try:
            started.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(started.process.pid, signal.SIGKILL)
            started.process.wait()
    started.discard_control()


def is_running(app: LocalApp) -> bool:
    """Is the recorded pid alive and still our model server (not a recycled pid)?"""
    try:
        cmdline = Path(f"/proc/{app.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(app.pid, 0)
        except OSError:
            return False
        return True
    if b"kserve_predictor.modelserver.server" not in cmdline:
        return False
    return any(a == b"--name" and b == app.name.encode() for a, b in itertools.pairwise(cmdline))


def stop_process(app: LocalApp, timeout: float = 15.0) -> bool:
    """Stop a recorded server's process; False if it was not running."""
    if not is_running(app):
        return False
    _signal_group(app.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_running(app) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_running(app):
        _signal_group(app.pid, signal.SIGKILL)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
