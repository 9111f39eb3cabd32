"""What takes time shows it: a large copy's progress on a terminal, and each state change of
the InferenceService while the deployment waits for it."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import OUTPUTS, SECRET_KEY, Cluster, S3Server, run_cli, upload

from kserve_predictor.progress import SHOW_FILES

EXTRA_FILES = SHOW_FILES + 10
PROGRESS_LINE = re.compile(r"copying: (\d+)/(\d+) files, [\d.]+ \w+/[\d.]+ \w+, [\d.]+ \w+/s")


def _many_files_model(s3: S3Server, bucket: str, zoo: Path, tmp_path: Path) -> str:
    """A model the mlflow engine copies file by file, with more files than SHOW_FILES."""
    folder = tmp_path / "model"
    shutil.copytree(zoo / "sklearn_pickle", folder)
    for i in range(EXTRA_FILES):
        (folder / "extra" / f"part-{i:03d}.txt").parent.mkdir(exist_ok=True)
        (folder / "extra" / f"part-{i:03d}.txt").write_text(f"part {i}\n" * 100)
    return upload(s3, folder, bucket, f"1/models/m-{uuid.uuid4().hex[:12]}/artifacts")


def _run_on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (as in an interactive shell) and stdout on
    a pipe; returns the exit code, stdout and what the terminal received."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FUSEML_", "MLFLOW_", "AWS_"))
    }
    full_env.update({"AWS_EC2_METADATA_DISABLED": "true", **env})
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "kserve_predictor", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    received = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            process.kill()
            pytest.fail("the command went silent on the terminal for 120 s")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the slave side closed: the process ended
            break
        if not chunk:
            break
        received += chunk
    stdout = process.stdout.read().decode() if process.stdout else ""
    code = process.wait(timeout=60)
    os.close(master)
    terminal = received.decode(errors="replace")
    OUTPUTS.append(stdout + terminal)
    return code, stdout, terminal


def test_a_copy_of_many_files_shows_files_and_bytes_on_a_terminal(
    s3: S3Server, bucket: str, zoo: Path, tmp_path: Path
) -> None:
    url = _many_files_model(s3, bucket, zoo, tmp_path)
    code, stdout, terminal = _run_on_a_terminal("convert", url, "--predictor", "mlflow", env=s3.env)
    assert code == 0, terminal
    counts = [(int(a), int(b)) for a, b in PROGRESS_LINE.findall(terminal)]
    assert counts, terminal
    total = counts[-1][1]
    assert total >= EXTRA_FILES and counts[-1] == (total, total)  # ends complete
    assert [done for done, _ in counts] == sorted(done for done, _ in counts)  # only forward
    assert "\r" in terminal  # redrawn in place, not a line per tick
    assert SECRET_KEY not in terminal and "copying" not in stdout  # stdout stays the result
    summary = re.search(r"(\d+) copied, (\d+) written", stdout)
    assert summary and int(summary[1]) + int(summary[2]) == total  # the bar counted every file


def test_no_progress_without_a_terminal_or_with_json(
    s3: S3Server, bucket: str, zoo: Path, tmp_path: Path
) -> None:
    url = _many_files_model(s3, bucket, zoo, tmp_path)
    piped = run_cli("convert", url, "--predictor", "mlflow", env=s3.env)
    assert piped.code == 0, piped.stderr
    assert "copying:" not in piped.stderr and "\r" not in piped.stderr
    other = _many_files_model(s3, bucket, zoo, tmp_path / "again")
    code, stdout, terminal = _run_on_a_terminal(
        "convert", other, "--predictor", "mlflow", "--output", "json", env=s3.env
    )
    assert code == 0, terminal
    assert "copying:" not in terminal
    assert len(json.loads(stdout)["copied"]) > EXTRA_FILES


def test_a_small_quick_copy_shows_nothing_even_on_a_terminal(s3: S3Server, s3_model) -> None:
    code, stdout, terminal = _run_on_a_terminal("convert", s3_model("sklearn_pickle"), env=s3.env)
    assert code == 0, terminal
    assert "1 copied" in stdout and "copying:" not in terminal


STAGE_LINE = re.compile(r"^INFO kserve_predictor\.cluster: default/(\S+): (.*)$", re.M)


def _stages(stderr: str, app: str) -> list[str]:
    return [text for name, text in STAGE_LINE.findall(stderr) if name == app]


def test_the_wait_prints_each_state_change_once_in_order(
    s3: S3Server, s3_model, cluster: Cluster
) -> None:  # type: ignore[no-untyped-def]
    env = {**s3.env, "KUBECONFIG": str(cluster.kubeconfig)}
    url = s3_model("sklearn_pickle")
    done = run_cli("deploy", "--model", url, "--app-name", "iris", "--output", "json", env=env)
    assert done.code == 0, done.stderr
    json.loads(done.stdout)  # stdout stays the JSON; the stages go to stderr
    stages = _stages(done.stderr, "iris")
    assert len(stages) == len(set(stages)), stages  # no repeats
    expected = [
        "revision iris-predictor-00001 created",
        "storage initializer downloading the model",
        "model server started; loading the model",
    ]
    for line in expected:
        assert line in stages, (line, stages)
    assert [stages.index(line) for line in expected] == sorted(
        stages.index(line) for line in expected
    ), stages
    assert stages[-1].startswith("ready at http://"), stages
    assert SECRET_KEY not in done.stderr

    # A second run that changes nothing is ready at once: one line.
    again = run_cli("deploy", "--model", url, "--app-name", "iris", env=env)
    assert again.code == 0, again.stderr
    assert [line[:9] for line in _stages(again.stderr, "iris")] == ["ready at "], again.stderr


def _isvc(target: str, generation: int = 1) -> dict[str, Any]:
    """An InferenceService status as KServe writes it while a rollout is in progress."""
    return {
        "metadata": {"name": "iris", "generation": generation},
        "status": {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "Unknown", "reason": "InProgress"}],
            "modelStatus": {
                "transitionStatus": "InProgress",
                "states": {"activeModelState": "", "targetModelState": target},
            },
            "components": {"predictor": {"latestCreatedRevision": "iris-predictor-00001"}},
        },
    }


def _pod(init: dict[str, Any], server: dict[str, Any], restarts: int = 0) -> dict[str, Any]:
    def container(name: str, state: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "state": state, "ready": False, "restartCount": restarts}

    return {
        "metadata": {
            "name": "iris-predictor-00001-deployment-x",
            "labels": {"serving.knative.dev/revision": "iris-predictor-00001"},
        },
        "status": {
            "initContainerStatuses": [container("storage-initializer", init)],
            "containerStatuses": [container("kserve-container", server)],
        },
    }


def test_an_older_status_read_after_newer_pods_does_not_step_back() -> None:
    """The pods are read after each status event; a status event that lags the pods (the
    storage initializer is done, the status still says Loading) prints nothing."""
    from kserve_predictor.kserve.readiness import Expectation
    from kserve_predictor.kserve.stages import StageLog

    any_pod = Expectation(rollout_id="")  # the pods below carry no rollout id
    waiting = "waiting for the Ready condition"
    done = {"terminated": {"reason": "Completed", "exitCode": 0}}
    loading = _pod(done, {"running": {}})
    stages = StageLog("default/iris", logging.getLogger("test"))
    stages.update(_isvc("Pending"), any_pod, [loading], waiting)  # the first event, read late
    stages.update(_isvc("Loading"), any_pod, None, waiting)  # the pods unreadable for a moment
    stages.update(_isvc("Pending"), any_pod, [loading], waiting)
    assert stages.lines == [
        "revision iris-predictor-00001 created",
        "model server started; loading the model",
    ]
    # A restart of the pod is a real change, even to an earlier stage.
    restarted = _pod({"running": {}}, {"waiting": {"reason": "PodInitializing"}}, restarts=1)
    stages.update(_isvc("Loading"), any_pod, [restarted], waiting)
    assert stages.lines[-1] == "storage initializer downloading the model"
