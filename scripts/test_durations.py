"""Per-file and per-test times from a pytest JUnit XML report (docs/testing.md's tables).

    scripts/test.sh -q -p no:cacheprovider --junitxml=report.xml
    .venv/bin/python scripts/test_durations.py report.xml [--top 50]
    .venv/bin/python scripts/test_durations.py report.xml --slow 2 > tests/slow.txt

A test's time is its setup, call and teardown, as pytest's --durations adds them up; a file's
is the sum of its tests'. Under xdist the times are each worker's wall clock, not CPU time: on a
shared two-core machine they vary with the load (compare them as ratios, not as seconds).
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import defaultdict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("report")
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--slow", type=float, help="print the node ids taking this long or more")
    args = parser.parse_args()
    tests: list[tuple[float, str]] = []
    files: dict[str, list[float]] = defaultdict(list)
    for case in ET.parse(args.report).getroot().iter("testcase"):
        seconds = float(case.get("time") or 0)
        module = (case.get("classname") or "").split(".")
        path = "/".join(p for p in module if p and p[0].islower()) + ".py"
        tests.append((seconds, f"{path}::{case.get('name')}"))
        files[path].append(seconds)
    if args.slow is not None:
        print("\n".join(sorted(name for seconds, name in tests if seconds >= args.slow)))
        return
    total = sum(s for s, _ in tests)
    print("| file | tests | seconds | share |\n| --- | ---: | ---: | ---: |")
    for path, times in sorted(files.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {path} | {len(times)} | {sum(times):.1f} | {sum(times) / total:.1%} |")
    print(f"| **total** | {len(tests)} | {total:.1f} | |\n")
    print("| seconds | test |\n| ---: | --- |")
    for seconds, name in sorted(tests, reverse=True)[: args.top]:
        print(f"| {seconds:.1f} | {name} |")


if __name__ == "__main__":
    main()
