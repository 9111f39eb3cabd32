"""Managed local deployments: a redeploy never loses a working server, two deploys of one name
are serialised, bad local options are usage errors, and a local deploy writes only locally."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import CliResult, S3Server, free_port, ours, run_cli

ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"KSERVE_PREDICTOR_HOME": str(tmp_path / "home")}


def deploy(model: str | Path, app: str, *flags: str, env: dict[str, str], cwd: Path | None = None) -> CliResult:  # fmt: skip
    return run_cli(
        "deploy", "--target", "local", "--model", str(model), "--app-name", app,
        "--output", "json", *flags, env=env, cwd=cwd,
    )  # fmt: skip


def predict(url: str) -> list[int]:
    answer = requests.post(url, json={"instances": [ROW]}, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["predictions"])


def servers_named(app: str, workers: bool = True) -> list[int]:
    """Pids of every local model server process serving ``app`` that this test session started
    (conftest.ours: not another xdist worker's or another run's); without ``workers``, only the
    first process of each server (the one recorded)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        served = b"kserve_predictor.modelserver.server" in argv and app.encode() in argv
        if served and (workers or b"--fd" not in argv) and ours(proc.name):
            pids.append(int(proc.name))
    return sorted(pids)


def test_redeploy_replaces_the_server_on_the_same_url(
    zoo: Path, tmp_path: Path, home: dict[str, str]
) -> None:
    folder = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "iris")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    first = deploy(folder, "redeploy-same", env=home)
    assert first.code == 0, first.stderr
    old = json.loads(first.stdout)
    try:
        second = deploy(folder, "redeploy-same", env=home)
        assert second.code == 0, second.stderr
        new = json.loads(second.stdout)
        assert new["prediction_url"] == old["prediction_url"]  # same port: the URL stays
        assert new["replaced_pid"] == old["pid"] != new["pid"]
        assert servers_named("redeploy-same", workers=False) == [new["pid"]]
        assert predict(new["prediction_url"]) == [0]
        assert not Path(old["log"]).exists() and Path(new["log"]).exists()
        # local means local: the model folder is only read, the layout lives in the cache
        assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    finally:
        run_cli("delete", "redeploy-same", env=home)
    assert not Path(new["log"]).exists()  # the log goes with the deployment
    assert servers_named("redeploy-same") == []


def test_a_failing_redeploy_leaves_the_old_server_serving(
    zoo: Path, tmp_path: Path, home: dict[str, str]
) -> None:
    good = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "good")
    bad = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "bad")
    (bad / "model.pkl").write_bytes(b"not a pickle")
    first = deploy(good, "redeploy-bad", env=home)
    assert first.code == 0, first.stderr
    old = json.loads(first.stdout)
    try:
        # the model does not load
        failed = deploy(bad, "redeploy-bad", env=home)
        assert failed.code == 1 and failed.stderr.count("\n") == 1, failed.stderr
        assert "exited: sklearn runtime cannot load" in failed.stderr
        assert f"the running redeploy-bad, pid {old['pid']}, keeps serving" in failed.stderr
        failed_log = Path(home["KSERVE_PREDICTOR_HOME"]) / "apps" / "redeploy-bad.failed.log"
        assert str(failed_log) in failed.stderr and failed_log.is_file()
        assert predict(old["prediction_url"]) == [0]
        # the port asked for is taken by someone else
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = str(taken.getsockname()[1])
            refused = deploy(good, "redeploy-bad", "--port", busy, env=home)
        assert refused.code == 2 and f"port {busy} on 127.0.0.1 is in use" in refused.stderr
        assert "keeps serving" in refused.stderr
        assert servers_named("redeploy-bad", workers=False) == [old["pid"]]
        assert predict(old["prediction_url"]) == [0]
        status = json.loads(run_cli("status", "redeploy-bad", "--output", "json", env=home).stdout)
        assert status["pid"] == old["pid"] and status["running"] is True
    finally:
        run_cli("delete", "redeploy-bad", env=home)
    assert not failed_log.exists() and servers_named("redeploy-bad") == []


def test_two_deploys_of_one_name_at_once_leave_one_server(
    zoo: Path, tmp_path: Path, home: dict[str, str]
) -> None:
    folder = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "iris")
    env = {**os.environ, **home}
    command = [
        sys.executable, "-m", "kserve_predictor", "deploy", "--target", "local",
        "--model", str(folder), "--app-name", "deploy-twice", "--no-smoke-test",
    ]  # fmt: skip
    both = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]  # fmt: skip
    try:
        codes = [p.wait(timeout=300) for p in both]
        assert codes == [0, 0], [p.stderr.read() for p in both if p.stderr]
        running = servers_named("deploy-twice", workers=False)
        status = json.loads(run_cli("status", "--output", "json", env=home).stdout)["local"]
        assert [a["pid"] for a in status] == running  # the one left is the one recorded
    finally:
        run_cli("delete", "deploy-twice", env=home)
    assert servers_named("deploy-twice") == []  # no orphan that delete could not see


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--port", "0"], "--port 0 is not a TCP port; use 1-65535"),
        (["--port", "70000"], "--port 70000 is not a TCP port"),
        (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid' does not resolve"),
        (["--host", "192.0.2.1"], "is not an address of this machine"),
        (["--timeout", "0"], "--timeout 0.0 must be a positive number"),
        (["--resources-limits", "{cpu: 1}"], "--resources-limits applies to --target kserve only"),
        (["--runtime-version", "1.5.2"], "--runtime-version applies to --target kserve only"),
        (["--workers", "0"], "--workers 0 must be a number of server processes from 1 to 64"),
    ],
)
def test_bad_local_options_are_usage_errors(
    zoo: Path, tmp_path: Path, home: dict[str, str], flags: list[str], needle: str
) -> None:
    folder = shutil.copytree(zoo / "sklearn_pickle", tmp_path / "iris")
    done = deploy(folder, "bad-options", *flags, env=home)
    assert done.code == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ") and needle in done.stderr
    state = Path(home["KSERVE_PREDICTOR_HOME"])
    assert not (state / "cache").exists() and not list(state.glob("apps/*.json"))


def test_serve_rejects_a_port_out_of_range(zoo: Path, home: dict[str, str]) -> None:
    done = run_cli("serve", str(zoo / "sklearn_pickle"), "--port", "65536", env=home)
    assert done.code == 2 and "--port 65536 is not a TCP port" in done.stderr


def test_relative_model_paths_are_recorded_absolute_and_ipv6_works(
    zoo: Path, tmp_path: Path, home: dict[str, str]
) -> None:
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    shutil.copytree(zoo / "sklearn_pickle", tmp_path / "iris")
    done = deploy("./iris", "ipv6", "--host", "::1", env=home, cwd=tmp_path)
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    try:
        assert result["prediction_url"].startswith("http://[::1]:")
        assert result["smoke_test"]["rows"] > 0
        assert predict(result["prediction_url"]) == [0]
        assert result["model"] == str(tmp_path / "iris")
        status = json.loads(run_cli("status", "ipv6", "--output", "json", env=home).stdout)
        assert status["model"] == str(tmp_path / "iris")
    finally:
        run_cli("delete", "ipv6", env=home)


def test_an_s3_model_is_served_from_the_local_cache_without_writing_to_the_bucket(
    s3: S3Server, s3_model, bucket: str, home: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    url = s3_model("onnx")
    keys = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"])
    env = {**home, **s3.env}
    done = deploy(url, "from-s3", env=env)
    assert done.code == 0, done.stderr
    try:
        result = json.loads(done.stdout)
        assert result["smoke_test"]["rows"] > 0
        after = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"])
        assert after == keys  # nothing written into the bucket
        cache = Path(home["KSERVE_PREDICTOR_HOME"]) / "cache"
        assert list(cache.rglob("from-s3/1/model.onnx")) and list(cache.rglob("config.pbtxt"))
    finally:
        run_cli("delete", "from-s3", env=env)


@contextlib.contextmanager
def serving(model: Path, *flags: str, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """``serve MODEL FLAGS --output json`` in the foreground: its JSON once the port is bound;
    stopped (its whole process group) when the block ends."""
    serve = subprocess.Popen(
        [sys.executable, "-m", "kserve_predictor", "serve", str(model), *flags, "--output", "json"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        text = ""
        for line in serve.stdout:
            text += line
            if line.startswith("}"):
                break
        yield json.loads(text)
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()


def test_serve_output_json(zoo: Path, tmp_path: Path, home: dict[str, str]) -> None:
    port = free_port()
    with serving(zoo / "onnx", "--name", "iris", "--port", str(port), env=home) as data:
        assert data["prediction_url"] == f"http://127.0.0.1:{port}/v2/models/iris/infer"
        assert (data["engine"], data["protocol"]) == ("triton", "v2")
        curl = subprocess.run(data["curl"], shell=True, capture_output=True, text=True, timeout=30)
        assert {o["name"] for o in json.loads(curl.stdout)["outputs"]} == {"label", "probabilities"}
        assert not (zoo / "onnx" / "kserve").exists()  # the zoo folder is only read
