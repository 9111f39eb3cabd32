"""Benchmark: the FuseML step (``kserve-predictor run``) re-run on an unchanged model.

    .venv/bin/python bench/rerun_bench.py [--runs 5] [--profile]

Against moto's S3 server (own process), the Kubernetes API test server and the FuseML API test
server (bench/harness.py): the first run converts and deploys; each later run finds everything
as it is. For the re-runs it prints the wall time (median of RUNS), every request each server
received (counted on the servers' side: moto's request recorder, the test servers' logs), the
writes among them, and the time spent importing (``python -X importtime``, top-level modules).
``--profile`` adds a cProfile of one re-run (cumulative time, top 25).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time
from collections import Counter

from harness import PYTHON, servers, stock_model

GOAL = 0.6
# What any run pays before its first request: the interpreter, the Kubernetes client library
# (its package imports every API model) and one boto3 S3 client (botocore loads the service
# model and endpoint rules). Measured in fresh processes, as the step pays it.
FLOOR = (
    "import kubernetes, boto3;"
    "boto3.client('s3', endpoint_url='http://127.0.0.1:9', region_name='us-east-1',"
    " aws_access_key_id='a', aws_secret_access_key='b')"
)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def step(env: dict[str, str], *flags: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(
        [PYTHON, *flags, "-m", "kserve_predictor", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done


def import_times(stderr: str) -> tuple[float, list[tuple[float, str]]]:
    """Total import time and the slowest top-level imports (cumulative, seconds)."""
    top: list[tuple[float, str]] = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)", line)
        if match and not match.group(2):
            top.append((int(match.group(1)) / 1e6, match.group(3)))
    return sum(t for t, _ in top), sorted(top, reverse=True)[:8]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with servers() as srv:
        url = stock_model(srv)
        env = srv.step_env(url, FUSEML_APP_NAME="rerun")
        first, _ = step(env)
        srv.api.wait_for_callbacks()
        walls = []
        for _ in range(args.runs):
            walls.append(step(env)[0])

        # One re-run more, with every server counting what it receives.
        k8s_before, fuseml_before = len(srv.api.requests), len(srv.fuseml.requests_log)
        srv.recorder.start()
        step(env)
        s3_log = srv.recorder.stop()
        k8s = srv.k8s_requests(k8s_before)
        fuseml = Counter(f"{m} {p}" for m, p, _ in srv.fuseml.requests_log[fuseml_before:])
        s3 = Counter(
            f"{r['method']} {r['url'].split('?')[0].split('/', 3)[-1]}"
            + ("?" + r["url"].split("?", 1)[1] if "?" in r["url"] else "")
            for r in s3_log
        )

        _, traced = step(env, "-X", "importtime")
        importing, slowest = import_times(traced.stderr)
        if args.profile:
            profile = srv.work / "rerun.prof"
            step(env, "-m", "cProfile", "-o", str(profile))
            import pstats

            pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(25)

    floors = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", FLOOR], check=True)
        floors.append(time.perf_counter() - start)
    floor = statistics.median(floors)
    median = statistics.median(walls)
    print(f"first run (converts and deploys): {first:6.2f} s")
    print(
        f"re-run, unchanged model: median {median:6.3f} s   max {max(walls):6.3f} s"
        f"   over {args.runs} runs   median/goal {median / GOAL:5.2f}"
    )
    print(
        f"floor (python + import kubernetes + a boto3 S3 client, no request): {floor:6.3f} s"
        f"   floor/goal {floor / GOAL:5.2f}   re-run beyond the floor {median - floor:6.3f} s"
    )
    print(f"time importing: {importing:6.3f} s; slowest top-level imports:")
    for seconds, module in slowest:
        print(f"  {seconds:6.3f} s  {module}")
    for label, counts in (("S3 (moto)", s3), ("Kubernetes API", k8s), ("FuseML API", fuseml)):
        writes = sum(
            n
            for request, n in counts.items()
            if request.split()[0] in WRITES and not request.endswith("(dry run)")
        )
        print(f"{label}: {sum(counts.values())} requests, {writes} writes")
        for request, n in sorted(counts.items()):
            print(f"  {n:3} x {request}")


if __name__ == "__main__":
    main()
