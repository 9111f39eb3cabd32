"""Benchmark: how soon the step knows that its InferenceService is Ready.

    .venv/bin/python bench/readiness_bench.py [--runs 20] [--ready-after 0.5]

Runs the FuseML step (``kserve-predictor run``) RUNS times against the Kubernetes API test
server and the FuseML API test server, with the model on moto's S3 server (bench/harness.py).
Each run deploys a new application, so each waits for a new InferenceService; a controller marks
it InProgress at once and Ready READY_AFTER seconds later, recording the instant (wall clock) of
that write. The delay is from that instant to the step's result file (its mtime, written once
the step has also registered the application with FuseML) and to the step's last log line (the
instant this process read it from the step's stderr). Prints median and max over the runs and
their ratio to the goal (0.2 s) and to the KServe SDK's 10 s poll interval.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import threading
import time

from harness import PYTHON, servers, stock_model

GOAL = 0.2
SDK_POLL = 10.0


def run_once(env: dict[str, str]) -> tuple[int, list[tuple[float, str]]]:
    """Run the step; return its exit code and its stderr lines stamped as they arrived."""
    lines: list[tuple[float, str]] = []
    child = subprocess.Popen(
        [PYTHON, "-m", "kserve_predictor", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert child.stderr is not None

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.append((time.time(), line.rstrip()))

    reader = threading.Thread(target=read)
    reader.start()
    code = child.wait(timeout=120)
    reader.join()
    return code, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ready-after", type=float, default=0.5)
    args = parser.parse_args()
    with servers(ready_after=args.ready_after) as srv:
        url = stock_model(srv)
        # The first run converts the model; every run after it finds the layout complete.
        result_delays: list[float] = []
        log_delays: list[float] = []
        for i in range(args.runs + 1):
            name = f"ready-{i:02}"
            env = srv.step_env(url, FUSEML_APP_NAME=name)
            code, lines = run_once(env)
            if code != 0:
                raise SystemExit(f"run {i} failed ({code}):\n" + "\n".join(t for _, t in lines))
            if i == 0:
                continue  # warm-up: the conversion
            flipped = srv.controller.flipped[name]
            result = srv.work / "results" / "prediction-url"
            result_delays.append(result.stat().st_mtime_ns / 1e9 - flipped)
            log_delays.append(lines[-1][0] - flipped)

    print(f"runs: {args.runs}, Ready written {args.ready_after:.1f} s after the InProgress status")
    for label, delays in (("result file", result_delays), ("last log line", log_delays)):
        median, worst = statistics.median(delays), max(delays)
        print(
            f"Ready -> {label:<14} median {median * 1000:7.1f} ms   max {worst * 1000:7.1f} ms"
            f"   median/goal {median / GOAL:5.2f}   KServe SDK poll / median {SDK_POLL / median:6.0f}x"
        )


if __name__ == "__main__":
    main()
