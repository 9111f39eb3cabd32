"""Run ``kserve-predictor-runtime`` the way a KServe pod runs it, from the ServingRuntime's
container spec in deploy/, and lay out model folders the way the storage initializer does.

A pod differs from a test process in four things only, each substituted here: KServe replaces
``{{.Name}}`` with the InferenceService name, volumes appear at their mountPath (here: a
folder per volume), every pod has its own network namespace (here: free ports instead of
8080/8081, which several runtimes on one machine would share), and the container's CPU limit
caps the CPUs the runtime counts (kubelet sets it as the cgroup's CFS quota,
kubernetes/kubernetes pkg/kubelet/cm/helpers_linux.go MilliCPUToQuota, which
workers.usable_cpus reads; here: the process's CPU affinity, which it reads too), so the
runtime starts as many KServe workers as in the real pod.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "deploy" / "kserve-predictor-mlflow.yaml"
WHEELHOUSE = ROOT / ".wheelhouse"
MODEL_MOUNT = "/mnt/models"  # where KServe's storage initializer puts the model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(MANIFEST.read_text()))


def storage_initializer_copy(source: Path, target: Path) -> Path:
    """Copy a model folder as KServe's storage initializer downloads it: zero-byte objects (an
    empty __init__.py) and folder keys never arrive."""
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.stat().st_size > 0:
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    return target


@dataclass
class PodCommand:
    argv: list[str]
    env: dict[str, str]
    http_port: int
    cpus: int | None = None
    """The CPUs the container's limit allows (rounded up), None without a limit."""


def cpu_limit(quantity: str | None) -> int | None:
    """A Kubernetes CPU quantity ("1", "500m", "1.5") as whole CPUs, rounded up as
    usable_cpus rounds a CFS quota."""
    import math

    if not quantity:
        return None
    text = str(quantity)
    cpus = int(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return max(1, math.ceil(cpus))


def pod_command(
    runtime: dict[str, Any], name: str, model_dir: Path, volumes: Path, **env: str
) -> PodCommand:
    """The container's command line and environment, with the pod's substitutions."""
    container = runtime["spec"]["containers"][0]
    http_port = free_port()
    mounts = {m["mountPath"]: volumes / m["name"] for m in container.get("volumeMounts", [])}
    mounts[MODEL_MOUNT] = model_dir

    def in_pod(value: str) -> str:
        value = value.replace("{{.Name}}", name)
        for mount, folder in mounts.items():
            value = value.replace(mount, str(folder))
        return value

    args = [in_pod(a) for a in container["args"]]
    args = [f"--http_port={http_port}" if a.startswith("--http_port=") else a for a in args]
    args.append(f"--grpc_port={free_port()}")
    for folder in mounts.values():
        folder.mkdir(parents=True, exist_ok=True)
    # The image's ENTRYPOINT: the console script, installed beside this interpreter.
    entrypoint = str(Path(sys.executable).with_name("kserve-predictor-runtime"))
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KSERVE_PREDICTOR_", "PIP_"))},
        **{e["name"]: in_pod(e["value"]) for e in container.get("env", [])},
        # No index at test time: requirements come from the wheelhouse only.
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        **env,
    }
    limits = (container.get("resources") or {}).get("limits") or {}
    return PodCommand([entrypoint, *args], environment, http_port, cpu_limit(limits.get("cpu")))


@dataclass
class RunningRuntime:
    process: subprocess.Popen  # type: ignore[type-arg]
    url: str
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RuntimeExited(Exception):
    """The runtime exited before it was ready; the message is its last line."""

    def __init__(self, code: int, output: str) -> None:
        lines = [line for line in output.splitlines() if line.strip()]
        super().__init__((lines or ["the runtime exited"])[-1])
        self.code = code
        self.output = output


def start(command: PodCommand, log: Path, timeout: float = 180) -> RunningRuntime:
    """Start the runtime and wait for KServe's readiness path; RuntimeExited if it exits."""
    import requests

    allowed = sorted(os.sched_getaffinity(0))
    cpus = set(allowed[: command.cpus]) if command.cpus else set(allowed)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command.argv, env=command.env, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )  # fmt: skip
    url = f"http://127.0.0.1:{command.http_port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise RuntimeExited(code, log.read_text())
        try:
            if requests.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return RunningRuntime(process, url, log)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    process.wait()
    raise RuntimeError(
        f"the runtime did not become ready in {timeout:.0f} s: {log.read_text()[-500:]}"
    )
