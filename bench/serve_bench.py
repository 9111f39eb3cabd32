"""Benchmark: serving throughput and latency of the local runtime (kserve.ModelServer on the
converted layout) and the project's runtime (kserve-predictor-runtime, mlflow.pyfunc inside
KServe's server) against ``mlflow models serve --env-manager local``, at equal workers.

    .venv/bin/python bench/serve_bench.py [--seconds 8] [--workers N] [--connections 8]
                                          [--models sklearn,xgboost] [--rows 1,16]

For an sklearn and an XGBoost iris model (made here with MLflow), each server is started with
WORKERS processes (default: the CPUs this process may use, the servers' own default), warmed up,
then loaded for SECONDS by CONNECTIONS keep-alive HTTP connections spread over two load processes
(one Python process alone tops out below what the servers answer), each sending requests of
ROWS rows back to back: V1 and V2 for ours, MLflow's /invocations for mlflow. Prints requests
per second, p50 and p99 latency, and per model and row count the ratio of each of ours to mlflow
(throughput; the goal is 2x) and p99 against the 5 ms goal for one row. The servers and the load
share the machine's cores, the same way for every server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import PYTHON, free_port, train_iris

from kserve_predictor.modelserver.workers import usable_cpus

BIN = Path(PYTHON).parent

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.6, 3.1, 1.5, 0.2]]
GOAL_RATIO, GOAL_P99_MS = 2.0, 5.0
LOAD_PROCESSES = 2

XGBOOST = """
import sys, mlflow.xgboost, xgboost as xgb
from sklearn.datasets import load_iris
x, y = load_iris(return_X_y=True, as_frame=True)
booster = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(x, label=y),
                    num_boost_round=20)
mlflow.xgboost.save_model(booster, sys.argv[1], input_example=x.head(3))
"""


def rows(n: int) -> list[list[float]]:
    return [ROWS[i % len(ROWS)] for i in range(n)]


def v1_body(n: int, named: bool) -> dict[str, Any]:
    if named:  # mlflow.pyfunc behind KServe: records with the signature's column names
        return {"instances": [dict(zip(COLUMNS, r, strict=True)) for r in rows(n)]}
    return {"instances": rows(n)}


def v2_body(n: int, named: bool) -> dict[str, Any]:
    data = rows(n)
    if named:  # one V2 input per signature column
        inputs = [
            {"name": c, "shape": [n], "datatype": "FP64", "data": [r[i] for r in data]}
            for i, c in enumerate(COLUMNS)
        ]
    else:
        flat = [v for r in data for v in r]
        inputs = [{"name": "input-0", "shape": [n, 4], "datatype": "FP64", "data": flat}]
    return {"inputs": inputs}


def mlflow_body(n: int, named: bool) -> dict[str, Any]:
    return {"dataframe_split": {"columns": COLUMNS, "data": rows(n)}}


def wait_ready(port: int, path: str, server: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the server on port {port} did not become ready")


def _load_process(args: tuple[int, str, bytes, float, int]) -> tuple[list[float], int, str]:
    """In one load process: ``connections`` threads; latencies (s), errors, the first error."""
    import threading

    port, path, body, until, connections = args
    latencies: list[float] = []
    errors = [0]
    first_error = [""]
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        while time.time() < until:
            start = time.perf_counter()
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            text = response.read()
            if response.status == 200:
                mine.append(time.perf_counter() - start)
            else:
                with lock:
                    errors[0] += 1
                    first_error[0] = first_error[0] or f"HTTP {response.status}: {text[:200]!r}"
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], first_error[0]


def load(port: int, path: str, body: bytes, seconds: float, connections: int) -> dict[str, Any]:
    per_process = max(1, connections // LOAD_PROCESSES)
    until = time.time() + seconds
    with multiprocessing.get_context("fork").Pool(LOAD_PROCESSES) as pool:
        parts = pool.map(_load_process, [(port, path, body, until, per_process)] * LOAD_PROCESSES)
    latencies = sorted(t for part in parts for t in part[0])
    errors = sum(part[1] for part in parts)
    if not latencies:
        raise SystemExit(f"no request to {path} succeeded: {parts[0][2]}")
    return {
        "rps": len(latencies) / seconds,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "errors": errors,
        "error": next((p[2] for p in parts if p[2]), ""),
    }


def serve(
    command: list[str], port: int, ready: str, routes: dict[str, tuple[str, Any]], args: Any
) -> dict[tuple[str, int], dict[str, Any]]:
    """Start a server, and for each protocol and row count warm up and measure it."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env
    )  # fmt: skip
    results = {}
    try:
        wait_ready(port, ready, server)
        for protocol, (path, make_body) in routes.items():
            for n in args.rows:
                body = json.dumps(make_body(n)).encode()
                load(port, path, body, 2.0, args.connections)  # warm-up: every worker loaded
                results[(protocol, n)] = load(port, path, body, args.seconds, args.connections)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    return results


def make_models(work: Path, wanted: list[str]) -> dict[str, tuple[Path, Path, str]]:
    """name → (MLflow folder, converted layout, engine)."""
    models = {}
    for name in wanted:
        folder = work / name
        if name == "sklearn":
            train_iris(folder)
        else:
            subprocess.run([PYTHON, "-c", XGBOOST, str(folder)], check=True, capture_output=True)
        done = subprocess.run(
            [PYTHON, "-m", "kserve_predictor", "convert", str(folder), "--output", "json"],
            capture_output=True, text=True, check=True,
            env={**os.environ, "KSERVE_PREDICTOR_HOME": str(work / "home")},
        )  # fmt: skip
        info = json.loads(done.stdout)
        models[name] = (folder, Path(info["location"].removeprefix("file://")), info["engine"])
    return models


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=usable_cpus())
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--models", default="sklearn,xgboost")
    parser.add_argument("--rows", default="1,16")
    args = parser.parse_args()
    args.rows = [int(n) for n in args.rows.split(",")]
    work = Path(tempfile.mkdtemp(prefix="kp-serve-bench-"))
    table: list[tuple[str, int, str, dict[str, Any]]] = []
    try:
        models = make_models(work, args.models.split(","))
        print(
            f"{args.workers} workers per server, {args.connections} connections, "
            f"{args.seconds:.0f} s per figure, {os.cpu_count()} CPUs shared by servers and load"
        )
        for model, (folder, layout, engine) in models.items():
            servers = {
                "local runtime": (
                    [PYTHON, "-m", "kserve_predictor.modelserver.server", "--engine", engine,
                     "--folder", str(layout), "--name", "m", "--workers", str(args.workers)],
                    "/v2/health/ready", False,
                ),
                "project runtime": (
                    [str(BIN / "kserve-predictor-runtime"), f"--model_dir={folder}", "--model_name=m",
                     f"--workers={args.workers}", f"--grpc_port={free_port()}"],
                    "/v2/health/ready", True,
                ),
                "mlflow models serve": (
                    [str(BIN / "mlflow"), "models", "serve", "-m", str(folder), "--env-manager",
                     "local", "-h", "127.0.0.1", "-w", str(args.workers)],
                    "/ping", True,
                ),
            }  # fmt: skip
            for server, (command, ready, named) in servers.items():
                port = free_port()
                command = [*command, *port_flags(server, port)]
                if server == "mlflow models serve":
                    routes = {"mlflow": ("/invocations", lambda n, nm=named: mlflow_body(n, nm))}
                else:
                    routes = {
                        "v1": ("/v1/models/m:predict", lambda n, nm=named: v1_body(n, nm)),
                        "v2": ("/v2/models/m/infer", lambda n, nm=named: v2_body(n, nm)),
                    }
                for (protocol, n), figures in serve(command, port, ready, routes, args).items():
                    table.append((model, n, f"{server} {protocol}", figures))
                    print(
                        f"{model:<8} {n:>2} row(s)  {server + ' ' + protocol:<28} "
                        f"{figures['rps']:8.1f} req/s  p50 {figures['p50']:6.2f} ms  "
                        f"p99 {figures['p99']:6.2f} ms  errors {figures['errors']}"
                        + (f" ({figures['error']})" if figures["errors"] else ""),
                        flush=True,
                    )
        print("\nratios to mlflow models serve (throughput; goal 2x) and p99 (goal 5 ms, 1 row):")
        for model, n, label, figures in table:
            if label.startswith("mlflow"):
                continue
            theirs = next(
                f for m, k, lab, f in table if (m, k) == (model, n) and lab.startswith("mlflow")
            )
            ratio = figures["rps"] / theirs["rps"]
            p99 = (
                f"   p99 {figures['p99']:.1f} ms"
                + (" (goal met)" if figures["p99"] <= GOAL_P99_MS else "")
                if n == 1
                else ""
            )
            print(f"  {model:<8} {n:>2} row(s)  {label:<24} {ratio:5.2f}x" + (" (goal met)" if ratio >= GOAL_RATIO else "") + p99)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def port_flags(server: str, port: int) -> list[str]:
    if server == "local runtime":
        return ["--port", str(port)]
    if server == "project runtime":
        return [f"--http_port={port}"]
    return ["-p", str(port)]


if __name__ == "__main__":
    main()
