#!/usr/bin/env bash
# Format, lint and type checks in one command: ruff format --check, ruff check, mypy, the import
# layers (pyproject's [tool.importlinter]: no module imports a layer above its own); then the
# release recipe's own check: the wheel and the sdist build, and twine finds their metadata fit
# for an index (docs/development.md "Releasing").
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff format --check src tests bench examples
.venv/bin/ruff check src tests bench examples
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT
# --no-isolation: the build backend is in the dev extra, so this works offline and in seconds.
if ! .venv/bin/python -m build --no-isolation --outdir "$dist" . >"$dist/build.log" 2>&1; then
  cat "$dist/build.log" >&2
  exit 1
fi
.venv/bin/twine check --strict "$dist"/*.whl "$dist"/*.tar.gz
