"""Server processes beside the first, all accepting on one listening socket.

A server with N workers is the process that loaded the model and serves, plus N-1 fresh
interpreters that load the model themselves and accept on the same socket (inherited by file
descriptor). Fresh interpreters, not forks: XGBoost's OpenMP runtime hangs in a child forked
after a model was loaded, and a fresh process loads the same way the first one did.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("kserve_predictor.serving.workers")  # stable log channel, not the path

CGROUP = Path("/sys/fs/cgroup")
_PR_SET_PDEATHSIG = 1


def usable_cpus(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may use: its affinity, lowered to its cgroup's CPU quota (a
    container's CPU limit, which the affinity does not show)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = cgroup_cpu_quota(cgroup)
    if quota is not None:
        count = min(count or 1, math.ceil(quota))
    return max(1, count or 1)


def cgroup_cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 ``cpu.max``, else v1), None when unlimited."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for folder in ("cpu,cpuacct", "cpu"):
        try:
            quota_us = int((cgroup / folder / "cpu.cfs_quota_us").read_text())
            period_us = int((cgroup / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


# The thread pools of the model libraries: OpenMP (XGBoost, LightGBM, scikit-learn's trees),
# OpenBLAS and MKL (numpy). Each reads its variable once, when it loads.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def share_cpus(workers: int) -> None:
    """Give each worker its share of the CPUs for the libraries' own threads, unless the user
    set them: N workers each starting a pool of all CPUs oversubscribe them, and OpenMP's
    spinning threads then make a one-row XGBoost prediction take tens of milliseconds."""
    threads = str(max(1, usable_cpus() // max(1, workers)))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, threads)


def worker_command(engine: str, folder: Path, name: str, fd: int) -> list[str]:
    return [
        sys.executable, "-m", "kserve_predictor.modelserver.server",
        "--engine", engine, "--folder", str(folder), "--name", name,
        "--fd", str(fd), "--parent", str(os.getpid()),
    ]  # fmt: skip


@contextlib.contextmanager
def extra_workers(
    count: int, engine: str, folder: Path, name: str, sock: socket.socket
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``count - 1`` workers on ``sock`` (their output goes where ours goes); stop them
    when the block ends, however it ends."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count - 1):
            command = worker_command(engine, folder, name, sock.fileno())
            started.append(subprocess.Popen(command, pass_fds=[sock.fileno()]))
        if started:
            log.info("started %d more workers: pids %s", len(started), [p.pid for p in started])
        yield started
    finally:
        stop_workers(started)


def stop_workers(workers: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def follow_parent(parent: int) -> None:
    """In a worker: be stopped (SIGTERM) when the first process ends, even by SIGKILL, so no
    worker keeps serving a port nobody manages."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before the line above
        raise SystemExit(0)
