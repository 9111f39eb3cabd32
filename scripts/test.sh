#!/usr/bin/env bash
# Set up everything the tests need and run them (README command two; CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# The wheelhouse the runtime tests install a model's requirement from (no index at test time):
# a tiny pure-Python package that the test environment deliberately does not have.
if [ ! -f .wheelhouse/roman-4.2-py3-none-any.whl ]; then
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest .wheelhouse roman==4.2
fi
bash scripts/runtime-envs.sh  # the stock-runtime environments of the compatibility tests
.venv/bin/python -m pytest "$@"
