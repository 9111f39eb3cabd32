#!/usr/bin/env bash
# Set up everything the tests need and run them (README command two; CI runs this).
#
#   scripts/test.sh [--quick] [PYTEST ARGS...]
#
# The whole suite runs on PYTEST_WORKERS xdist workers (default 4; 0 runs in this one process),
# a test file per worker at a time (--dist loadfile: a file's module fixtures are made once).
# --quick runs the inner-loop selection (-m "not slow", every module covered; docs/testing.md).
# What takes minutes to build (the stock-runtime environments, the model zoos) is cached outside
# the clone in $KSERVE_PREDICTOR_TEST_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/kserve-predictor-ci),
# each under a digest of everything that defines it, so a fresh clone reuses what is still valid
# and anything changed is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
took() {  # took STAGE: how long the stage that just ended took (docs/testing.md quotes these)
  echo "scripts/test.sh: $1 took $((SECONDS - mark)) s" >&2
  mark=$SECONDS
}
mark=$SECONDS
select=()
if [ "${1:-}" = "--quick" ]; then
  select=(-m "not slow")
  shift
fi
bash scripts/setup.sh dev
took "setup.sh dev (.venv)"
# The wheelhouse the runtime tests install a model's requirement from (no index at test time):
# a tiny pure-Python package that the test environment deliberately does not have.
if [ ! -f .wheelhouse/roman-4.2-py3-none-any.whl ]; then
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest .wheelhouse roman==4.2
fi
took "the wheelhouse"
cache="${KSERVE_PREDICTOR_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kserve-predictor-ci}"
# The model zoos are built (or found) here, before the test session hides the user's home; the
# tests only read the folder they are given (tests/zoo_cache.py). Built while the runtime
# environments install: one is CPU, the other mostly disk.
export KSERVE_PREDICTOR_ZOO_CACHE="${KSERVE_PREDICTOR_ZOO_CACHE:-$cache/zoo}"
.venv/bin/python tests/zoo_cache.py >/dev/null &
zoo=$!
RUNTIME_ENVS_CACHE="$cache/runtime-envs" bash scripts/runtime-envs.sh  # the compatibility tests'
took "runtime-envs.sh"
wait "$zoo"
took "the model zoos (after the runtime environments)"
workers="${PYTEST_WORKERS:-4}"
parallel=()
if [ "$workers" != 0 ]; then
  parallel=(-n "$workers" --dist loadfile)
fi
status=0
.venv/bin/python -m pytest "${parallel[@]}" "${select[@]}" "$@" || status=$?
took "pytest"
exit "$status"
