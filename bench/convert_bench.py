"""Benchmark: copying a large model.pkl on a local S3 server (moto) three ways, and a 200-file
model, concurrent copies vs one at a time.

    .venv/bin/python bench/convert_bench.py [--sizes-mib 1024,4096] [--files 200] [--skip-baseline]

Starts moto's S3 server in its own process on 127.0.0.1 and, for each size, stores an MLflow
sklearn model whose model.pkl is SIZE MiB (random bytes: conversion never reads model bytes, so
their content does not matter), then measures, each in a fresh child process:

- ``kserve-predictor convert`` with the default threshold: concurrent UploadPartCopy parts,
- ``kserve-predictor convert`` with KSERVE_PREDICTOR_MULTIPART_THRESHOLD above the size: one
  CopyObject (only up to 5 GiB, CopyObject's limit),
- a download-and-upload baseline doing the same copy through the client with boto3
  (``--skip-baseline`` leaves it out),
- the no-op second run of ``kserve-predictor convert`` (the layout is complete: one listing,
  one record read), and ``detect`` alone,

printing wall time, peak RSS of the child, and the ratios baseline / part copy and single /
part copy. moto's UploadPartCopy reads the whole source object for every part, which a real S3
does not: on moto the part copy pays for that. Then the same model with FILES small files in
``code/`` is converted for the ``mlflow`` engine (which copies the whole MLflow folder) twice
into fresh buckets: with the default bounded pool of concurrent copies, and with one copy at
a time.
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

from kserve_predictor.settings.groups import DEFAULT_MULTIPART_THRESHOLD

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
    + "import kserve_predictor.layouts.convert as c; c.COPY_CONCURRENCY = 1\n"
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


MiB = 1024**2
LARGEST_COPY_OBJECT = 5 * 1024**3


def drop_layouts(s3: Any, bucket: str, prefix: str) -> None:
    """Remove the converted layouts, so the next convert copies again."""
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/kserve/").get("Contents", [])
    if listing:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in listing]})


def large_model(
    s3: Any, work: Path, endpoint: str, env: dict[str, str], size: int, baseline: bool
) -> dict[str, tuple[float, int]]:
    """The three copies of a SIZE MiB model.pkl (and the no-op re-run and detect alone)."""
    folder = work / f"model-{size}"
    make_model(folder, size)
    prefix = f"{size}/models/m-bench/artifacts"
    upload(s3, folder, "bench", prefix)
    shutil.rmtree(folder)
    url = f"s3://bench/{prefix}"
    convert = [PYTHON, "-c", CLI, "convert", url]
    runs = {"part copy": timed(convert, env), "no-op re-run": timed(convert, env)}
    drop_layouts(s3, "bench", prefix)
    if size * MiB <= LARGEST_COPY_OBJECT:
        single = {**env, "KSERVE_PREDICTOR_MULTIPART_THRESHOLD": str(size * MiB)}
        runs["single CopyObject"] = timed(convert, single)
        drop_layouts(s3, "bench", prefix)
    if baseline:
        source, dest = f"{prefix}/model.pkl", f"{prefix}/baseline/model.pkl"
        runs["download + upload"] = timed(
            [PYTHON, "-c", BASELINE, "bench", source, dest, endpoint], env
        )
        s3.delete_object(Bucket="bench", Key=dest)
    runs["detect alone"] = timed([PYTHON, "-c", CLI, "detect", url], env)
    s3.delete_objects(
        Bucket="bench",
        Delete={
            "Objects": [
                {"Key": o["Key"]}
                for o in s3.list_objects_v2(Bucket="bench", Prefix=prefix).get("Contents", [])
            ]
        },
    )  # moto holds objects in memory: free this size's before the next
    return runs


def report_large(size: int, runs: dict[str, tuple[float, int]]) -> None:
    if size * MiB <= DEFAULT_MULTIPART_THRESHOLD:
        print(f"{size:>6} MiB  (not above the default threshold: 'part copy' was one CopyObject)")
    for label, (seconds, rss) in runs.items():
        print(f"{size:>6} MiB  {label:<19} {seconds:7.2f} s   peak RSS {rss:5} MiB")
    part = runs["part copy"][0]
    ratios = [
        f"{label} / part copy {runs[label][0] / part:5.2f}x"
        for label in ("download + upload", "single CopyObject")
        if label in runs
    ]
    if ratios:
        print(f"{size:>6} MiB  " + "   ".join(ratios))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mib", default="1024", help="comma-separated, e.g. 1024,4096")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument(
        "--latency-ms", type=int, default=20, help="added to each request in the second series"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="no download + upload run")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes_mib.split(",") if size.strip()]
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, **CREDS, "MLFLOW_S3_ENDPOINT_URL": endpoint}
    env.pop("KSERVE_PREDICTOR_MULTIPART_THRESHOLD", None)  # the default, unless a run sets it
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
        large = {
            size: large_model(s3, work, endpoint, env, size, not args.skip_baseline)
            for size in sizes
        }

        prefix = "1/models/m-bench/artifacts"
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

        print("model.pkl copies (part copy: the default threshold, 64 MiB parts, 8 at a time):")
        for size, size_runs in large.items():
            report_large(size, size_runs)
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
