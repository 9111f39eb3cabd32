#!/usr/bin/env bash
# Set up everything the tests need and run them (README command two; CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/runtime-envs.sh  # the stock-runtime environments of the compatibility tests
.venv/bin/python -m pytest "$@"
