#!/usr/bin/env bash
# Set up everything the tests need and run them (README command two; CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/python -m pytest "$@"
