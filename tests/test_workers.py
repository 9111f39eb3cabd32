"""Server workers: the local server's extra processes share its socket and answer when the
first one cannot, stop with it (even when it is killed), and default to the CPUs the process
may use (affinity lowered to the cgroup's CPU quota, as in a pod with a CPU limit); the project
runtime's KServe workers each load the model without being killed as hung."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import time
from pathlib import Path

import pytest
import requests
from conftest import free_port, run_cli
from test_local_deploy import ROW, deploy, predict, servers_named, serving

from kserve_predictor.modelserver.workers import cgroup_cpu_quota, usable_cpus

AFFINITY = len(os.sched_getaffinity(0))


def cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({}, None),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ],
)  # fmt: skip
def test_the_cgroup_cpu_quota_is_read_as_the_kernel_writes_it(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    assert cgroup_cpu_quota(cgroup(tmp_path, files)) == quota


def test_usable_cpus_is_the_affinity_lowered_to_the_quota(tmp_path: Path) -> None:
    assert usable_cpus(cgroup(tmp_path / "none", {})) == AFFINITY
    assert usable_cpus(cgroup(tmp_path / "half", {"cpu.max": "50000 100000"})) == 1  # ceil, ≥ 1
    assert usable_cpus(cgroup(tmp_path / "many", {"cpu.max": "6400000 100000"})) == AFFINITY
    if AFFINITY > 1:
        assert usable_cpus(cgroup(tmp_path / "one", {"cpu.max": "100000 100000"})) == 1


def test_local_workers_share_the_port_and_stop_with_the_server(zoo: Path, tmp_path: Path) -> None:
    home = {"KSERVE_PREDICTOR_HOME": str(tmp_path / "home")}
    done = deploy(zoo / "sklearn_pickle", "two-workers", "--workers", "2", env=home)
    assert done.code == 0, done.stderr
    app = json.loads(done.stdout)
    try:
        assert app["workers"] == 2
        first = app["pid"]
        workers = [p for p in servers_named("two-workers") if p != first]
        assert len(workers) == 1 and servers_named("two-workers", workers=False) == [first]
        # each worker's libraries get its share of the CPUs, not a pool of them all each
        environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
        assert f"OMP_NUM_THREADS={max(1, AFFINITY // 2)}".encode() in environ
        # the first process frozen, the port still answers: the worker accepts on it
        os.kill(first, signal.SIGSTOP)
        try:
            assert predict(app["prediction_url"]) == [0]
        finally:
            os.kill(first, signal.SIGCONT)
        status = json.loads(run_cli("status", "two-workers", "--output", "json", env=home).stdout)
        assert status["workers"] == 2 and status["running"]
        human = run_cli("status", "two-workers", env=home).stdout
        assert "workers:         2" in human
    finally:
        run_cli("delete", "two-workers", env=home)
    assert servers_named("two-workers") == []


def test_a_worker_ends_when_its_first_process_is_killed(zoo: Path, tmp_path: Path) -> None:
    home = {"KSERVE_PREDICTOR_HOME": str(tmp_path / "home")}
    done = deploy(zoo / "sklearn_pickle", "orphan-check", "--workers", "2", env=home)
    assert done.code == 0, done.stderr
    first = json.loads(done.stdout)["pid"]
    assert len(servers_named("orphan-check")) == 2  # the first process and its worker
    os.kill(first, signal.SIGKILL)  # no chance to stop its workers itself
    deadline = time.monotonic() + 20
    while servers_named("orphan-check") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert servers_named("orphan-check") == [], "a worker outlived its server"
    run_cli("delete", "orphan-check", env=home)


def test_serve_takes_workers_and_answers(zoo: Path, tmp_path: Path) -> None:
    port = free_port()
    home = {"KSERVE_PREDICTOR_HOME": str(tmp_path / "home")}
    flags = ("--name", "serve-workers", "--port", str(port), "--workers", "3")
    with serving(zoo / "sklearn_pickle", *flags, env=home) as data:
        assert data["workers"] == 3
        url = f"http://127.0.0.1:{port}/v1/models/serve-workers:predict"
        answer = requests.post(url, json={"instances": [ROW]}, timeout=30)
        assert answer.json()["predictions"] == [0]
        deadline = time.monotonic() + 60
        while len(servers_named("serve-workers")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(servers_named("serve-workers")) == 2  # the serve process serves too
    assert servers_named("serve-workers") == []


def test_a_layout_model_pickles_into_one_that_loads_itself(zoo: Path, tmp_path: Path) -> None:
    """What KServe's --workers does to the model: pickled into each spawned process."""
    from kserve_predictor.modelserver.server import build_model

    folder = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "iris")
    done = run_cli("convert", str(folder), "--output", "json")
    assert done.code == 0, done.stderr
    layout = Path(json.loads(done.stdout)["location"].removeprefix("file://"))
    copy = pickle.loads(pickle.dumps(build_model("sklearn", layout, "iris")))
    assert copy.ready  # at once: requests wait for the load, KServe's liveness ping does not
    assert copy.predict({"instances": [ROW]}) == {"predictions": [0]}


def test_workers_are_refused_for_kserve_before_anything_is_made(tmp_path: Path) -> None:
    done = run_cli(
        "deploy", "--model", "s3://bucket/model", "--app-name", "iris", "--workers", "2",
        env={"KUBECONFIG": str(tmp_path / "no-kubeconfig")},
    )  # fmt: skip
    assert done.code == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--workers applies to --target local" in done.stderr


def test_a_stop_signal_while_the_app_is_built_stops_the_server() -> None:
    """SIGTERM (``kill``, Ctrl-C, a test's killpg) can come while the server still builds its
    app, before uvicorn takes the signals over; kserve's own handler then stopped nothing and
    the server served on. The signal is sent from inside the real RESTServer.create_application,
    so the moment is the same on a fast or a loaded machine."""
    code = (
        "import os, signal, kserve\n"
        "from kserve.protocol.rest.server import RESTServer\n"
        "from kserve_predictor.modelserver.server import serve\n"
        "class M(kserve.Model):\n"
        "    def __init__(self):\n"
        "        super().__init__('m')\n"
        "        self.ready = True\n"
        "real = RESTServer.create_application\n"
        "def building(self):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return real(self)\n"
        "RESTServer.create_application = building\n"
        f"serve(M(), '127.0.0.1', {free_port()})\n"
        "print('stopped', flush=True)\n"
    )
    import subprocess
    import sys

    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the server kept serving after SIGTERM: {e.stderr!r}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"
