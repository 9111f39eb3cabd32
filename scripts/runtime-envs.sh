#!/usr/bin/env bash
# Build the stock-runtime virtual environments the compatibility tests load models in:
# .runtime-envs/<runtime>/ with the library versions that KServe's default image ships
# (src/kserve_predictor/data/runtime_libraries.yaml names the sources). Cached and idempotent:
# an environment is rebuilt only when its pinned list (or the Python building it) changes.
#
# With RUNTIME_ENVS_CACHE=DIR (scripts/test.sh sets it to a folder outside the clone), each
# environment is built once in DIR/<runtime>-<digest of the Python version and the pins>/ and
# .runtime-envs/<runtime> is a symlink to it: a fresh clone reuses it, a changed pin makes a new
# digest and so a new build. Builders of one digest take turns on its lock file (flock).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${RUNTIME_ENV_PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
root=.runtime-envs
mkdir -p "$root"
cache="${RUNTIME_ENVS_CACHE:-}"

install() {  # install ENV PINS...: a new environment at ENV with exactly these pins
  local env="$1"; shift
  rm -rf "$env"
  "$python" -m venv "$env"
  "$env/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  printf '%s' "$*" > "$env/.pins"  # written last: an environment without it is unfinished
  echo "built $env: $*"
}

has() {  # has ENV PINS: ENV is a finished environment with exactly these pins
  [ -f "$1/.pins" ] && [ "$(cat "$1/.pins")" = "$2" ]
}

build() {
  local name="$1"; shift
  local env="$root/$name" wanted="$*"
  if [ -z "$cache" ]; then  # in the clone, as before
    if [ ! -L "$env" ] && has "$env" "$wanted"; then
      return 0
    fi
    rm -rf "$env"
    install "$env" "$@"
    return 0
  fi
  local digest target
  digest="$( { "$python" -c 'import sys; print(sys.version)'; printf '%s' "$wanted"; } \
    | sha256sum | cut -c1-16)"
  target="$cache/$name-$digest"
  mkdir -p "$cache"
  if ! has "$target" "$wanted"; then
    (
      flock 9
      has "$target" "$wanted" || install "$target" "$@"
    ) 9>"$target.lock"
  fi
  if [ "$(readlink "$env" 2>/dev/null)" != "$target" ]; then
    rm -rf "$env"
    ln -s "$target" "$env"
  fi
}

# kserve/sklearnserver:v0.14.0 … v0.20.0: Python 3.11, scikit-learn ~=1.5.1 (1.5.2), no cloudpickle.
build sklearnserver scikit-learn==1.5.2 joblib==1.5.3 numpy==2.4.4 scipy==1.17.1 \
  pandas==2.3.3 threadpoolctl==3.6.0 python-dateutil==2.9.0.post0 pytz==2025.2 tzdata==2025.2 six==1.17.0
# kserve/xgbserver:v0.14.0 … v0.20.0: Python 3.11, xgboost ~=2.1.1 (2.1.4), numpy 2.2.4.
build xgbserver xgboost-cpu==2.1.4 numpy==2.2.4 scipy==1.17.1 \
  pandas==2.3.3 python-dateutil==2.9.0.post0 pytz==2025.2 tzdata==2025.2 six==1.17.0
# kserve/lgbserver:v0.14.0 … v0.20.0: Python 3.11, lightgbm 4.6.0, numpy 2.2.4.
build lgbserver lightgbm==4.6.0 numpy==2.2.4 scipy==1.17.1 \
  pandas==2.3.3 python-dateutil==2.9.0.post0 pytz==2025.2 tzdata==2025.2 six==1.17.0
# nvcr.io/nvidia/tritonserver:23.05-py3: ONNX Runtime 1.15 (1.15.1 is the nearest wheel).
build triton-23.05 onnxruntime==1.15.1 numpy==1.26.4 protobuf==4.25.8 flatbuffers==25.2.10 \
  coloredlogs==15.0.1 humanfriendly==10.0 packaging==24.2 sympy==1.14.0 mpmath==1.3.0
# nvcr.io/nvidia/tritonserver:24.05-py3: ONNX Runtime 1.18.0 (reads ONNX IR 10).
build triton-24.05 onnxruntime==1.18.0 numpy==1.26.4 protobuf==4.25.8 flatbuffers==25.2.10 \
  coloredlogs==15.0.1 humanfriendly==10.0 packaging==24.2 sympy==1.14.0 mpmath==1.3.0
