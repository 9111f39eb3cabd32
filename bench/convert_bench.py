"""Benchmark: converting a ~1 GiB model on a local S3 server (moto), server-side vs a baseline,
and a 200-file model, concurrent copies vs one at a time.

    .venv/bin/python bench/convert_bench.py [--size-mib 1024] [--files 200]

Starts moto's S3 server in its own process on 127.0.0.1, stores an MLflow sklearn model whose
model.pkl is SIZE MiB (random bytes: conversion never reads model bytes, so their content does
not matter), then measures, each in a fresh child process:

- ``kserve-predictor convert`` (server-side CopyObject/UploadPartCopy),
- a download-and-upload baseline doing the same copy through the client with boto3,
- the no-op second run of ``kserve-predictor convert`` (the layout is complete: one listing,
  one record read),

printing wall time, peak RSS of the child, and the baseline/convert ratio. Then the same model
with FILES small files in ``code/`` is converted for the ``mlflow`` engine (which copies the whole
MLflow folder) twice into fresh buckets: with the default bounded pool of concurrent copies, and
with one copy at a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CREDS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# Children report their own peak RSS (VmHWM of their own address space) when they exit;
# wait4's ru_maxrss would include the forking parent's memory.
PEAK = """
import atexit, os, re
def _peak():
    status = open("/proc/self/status").read()
    open(os.environ["PEAK_FILE"], "w").write(re.search(r"VmHWM:\\s+(\\d+)", status).group(1))
atexit.register(_peak)
"""
CLI = (
    PEAK
    + "import runpy, sys; sys.argv[0] = 'kserve-predictor'; runpy.run_module('kserve_predictor', run_name='__main__')"
)
# The same command, copying one file at a time (for the comparison only).
SEQUENTIAL = (
    PEAK
    + "import kserve_predictor.convert as c; c.COPY_CONCURRENCY = 1\n"
    + "import runpy, sys; sys.argv[0] = 'kserve-predictor'; runpy.run_module('kserve_predictor', run_name='__main__')"
)
BASELINE = (
    PEAK
    + """
import boto3, sys, tempfile
bucket, src, dst, endpoint = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint)
with tempfile.TemporaryFile() as f:
    s3.download_fileobj(bucket, src, f)
    f.seek(0)
    s3.upload_fileobj(f, bucket, dst)
"""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run a child; return its wall time in seconds and its peak RSS in MiB."""
    with tempfile.NamedTemporaryFile() as peak:
        start = time.perf_counter()
        done = subprocess.run(
            cmd,
            env={**env, "PEAK_FILE": peak.name},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{cmd[:4]} failed: {done.stderr.decode()[-2000:]}")
        return elapsed, int(Path(peak.name).read_text()) // 1024


def make_model(folder: Path, size_mib: int) -> None:
    subprocess.run(
        [PYTHON, str(ROOT / "examples" / "train_iris.py"), str(folder)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with open(folder / "model.pkl", "wb") as f:
        chunk = os.urandom(1024 * 1024)
        for _ in range(size_mib):
            f.write(chunk)


class LatencyProxy:
    """A TCP proxy to the S3 server that holds each request chunk for ``delay`` seconds, like
    the round trip to a remote S3 endpoint (loopback has none, so concurrency barely shows)."""

    def __init__(self, port: int, delay: float) -> None:
        self.upstream, self.delay = port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(
                target=self._pump, args=(client, server, self.delay), daemon=True
            ).start()
            threading.Thread(target=self._pump, args=(server, client, 0.0), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, dest: socket.socket, delay: float) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                dest.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, dest):
                sock.close()


def upload(s3: Any, folder: Path, bucket: str, prefix: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument(
        "--latency-ms", type=int, default=20, help="added to each request in the second series"
    )
    args = parser.parse_args()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, **CREDS, "MLFLOW_S3_ENDPOINT_URL": endpoint}
    moto = subprocess.Popen(
        [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    work = Path(tempfile.mkdtemp(prefix="kp-bench-"))
    try:
        import boto3

        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            **{k.lower(): v for k, v in CREDS.items() if k != "AWS_DEFAULT_REGION"},
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="bench")
        make_model(work / "model", args.size_mib)
        prefix = "1/models/m-bench/artifacts"
        upload(s3, work / "model", "bench", prefix)
        url = f"s3://bench/{prefix}"
        convert = [PYTHON, "-c", CLI, "convert", url]

        first, first_rss = timed(convert, env)
        baseline, baseline_rss = timed(
            [
                PYTHON,
                "-c",
                BASELINE,
                "bench",
                f"{prefix}/model.pkl",
                f"{prefix}/baseline/model.pkl",
                endpoint,
            ],
            env,
        )
        noop, noop_rss = timed(convert, env)
        idle, idle_rss = timed([PYTHON, "-c", CLI, "detect", url], env)

        many = work / "many"
        make_model(many, 1)
        for i in range(args.files - len([p for p in many.rglob("*") if p.is_file()])):
            (many / "code").mkdir(exist_ok=True)
            (many / "code" / f"module_{i:03}.py").write_text(f"VALUE = {i}\n" * 200)
        files = len([p for p in many.rglob("*") if p.is_file()])
        runs: dict[str, float] = {}
        with LatencyProxy(port, args.latency_ms / 1000) as proxy:
            for where, via in (("loopback", endpoint), (f"+{args.latency_ms} ms", proxy.url)):
                for label, program in (("concurrent", CLI), ("sequential", SEQUENTIAL)):
                    bucket = f"bench-{label}-{len(runs)}"
                    s3.create_bucket(Bucket=bucket)
                    upload(s3, many, bucket, prefix)
                    command = [PYTHON, "-c", program, "convert", "--predictor", "mlflow"]
                    many_env = {**env, "MLFLOW_S3_ENDPOINT_URL": via}
                    runs[f"{where} {label}"] = timed(
                        [*command, f"s3://{bucket}/{prefix}"], many_env
                    )[0]
                    if label == "concurrent":
                        runs[f"{where} no-op"] = timed(
                            [*command, f"s3://{bucket}/{prefix}"], many_env
                        )[0]

        print(f"model size:                       {args.size_mib} MiB")
        print(f"convert (server-side copy):       {first:7.2f} s   peak RSS {first_rss} MiB")
        print(f"baseline (download + upload):     {baseline:7.2f} s   peak RSS {baseline_rss} MiB")
        print(f"second convert (nothing to do):   {noop:7.2f} s   peak RSS {noop_rss} MiB")
        print(f"detect alone (reads MLmodel):     {idle:7.2f} s   peak RSS {idle_rss} MiB")
        print(f"speed-up, baseline / convert:     {baseline / first:7.1f}x")
        print(f"convert peak RSS / model size:    {first_rss / args.size_mib:7.3f}")
        print(f"{files}-file model, mlflow engine (copies the MLflow folder):")
        for where in ("loopback", f"+{args.latency_ms} ms"):
            concurrent, sequential = runs[f"{where} concurrent"], runs[f"{where} sequential"]
            print(
                f"  {where:<10} concurrent {concurrent:6.2f} s   one at a time {sequential:6.2f} s"
                f"   ({sequential / concurrent:4.1f}x)   no-op re-run {runs[f'{where} no-op']:5.2f} s"
            )
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
