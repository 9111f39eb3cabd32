"""Benchmark: the local runtime (kserve.ModelServer, V2 REST) against
``mlflow models serve --env-manager local`` on the same sklearn iris model and machine.

    .venv/bin/python bench/serve_bench.py [--seconds 15] [--connections 4]

One load generator for both: CONNECTIONS keep-alive HTTP connections in threads, each sending
one-row prediction requests back to back for SECONDS after a warm-up. Prints requests per
second, p50 and p99 latency for each server and the ratios. Both servers and the generator share
the machine's cores, the same way for both.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ROW = [5.1, 3.5, 1.4, 0.2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server on port {port} did not become ready")


def load(
    port: int, path: str, body: bytes, seconds: float, connections: int
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, errors) for back-to-back requests on keep-alive connections."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, failed = [], 0
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                mine.append(time.perf_counter() - start)
            else:
                failed += 1
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99, errors


def measure(
    name: str,
    command: list[str],
    port: int,
    ready: str,
    path: str,
    body: dict,
    args: argparse.Namespace,
) -> tuple[float, float, float, int]:
    # mlflow runs `uvicorn` through the shell: the venv's bin folder must be on PATH
    env = {**os.environ, "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    try:
        wait_for(port, ready)
        data = json.dumps(body).encode()
        load(port, path, data, 2.0, args.connections)  # warm-up
        result = load(port, path, data, args.seconds, args.connections)
        print(
            f"{name:<34} {result[0]:8.1f} req/s   p50 {result[1]:6.2f} ms   p99 {result[2]:6.2f} ms   errors {result[3]}"
        )
        return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kp-serve-bench-"))
    try:
        model = work / "iris"
        subprocess.run(
            [PYTHON, str(ROOT / "examples" / "train_iris.py"), str(model)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(
            [PYTHON, "-m", "kserve_predictor", "convert", str(model), "--name", "iris"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"model: sklearn iris (cloudpickle), {args.connections} connections, {args.seconds:.0f} s each, one row per request"
        )

        port = free_port()
        ours = measure(
            "kserve-predictor (V2 REST)",
            [PYTHON, "-m", "kserve_predictor.serving.server", "--engine", "sklearn", "--folder", str(model / "kserve" / "sklearn"), "--name", "iris", "--port", str(port)],
            port, "/v2/health/ready", "/v2/models/iris/infer",
            {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}, args,
        )  # fmt: skip
        port = free_port()
        mlflow_bin = str(Path(PYTHON).with_name("mlflow"))
        theirs = measure(
            "mlflow models serve (local env)",
            [mlflow_bin, "models", "serve", "-m", str(model), "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            port, "/ping", "/invocations",
            {"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"], "data": [ROW]}}, args,
        )  # fmt: skip
        print(f"throughput ratio (ours / mlflow):  {ours[0] / theirs[0]:.2f}x")
        print(f"p50 latency ratio (mlflow / ours): {theirs[1] / ours[1]:.2f}x")
        print(f"p99 latency ratio (mlflow / ours): {theirs[2] / ours[2]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
