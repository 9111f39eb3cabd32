#!/usr/bin/env bash
# Format, lint and type checks in one command: ruff format --check, ruff check, mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff format --check src tests bench examples
.venv/bin/ruff check src tests bench examples
.venv/bin/mypy
