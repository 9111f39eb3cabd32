#!/usr/bin/env bash
# Build the stock-runtime virtual environments the compatibility tests load models in:
# .runtime-envs/<runtime>/ with the library versions that KServe's default image ships
# (src/kserve_predictor/data/runtime_libraries.yaml names the sources). Cached and idempotent:
# an environment is rebuilt only when its pinned list changes.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${RUNTIME_ENV_PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
root=.runtime-envs
mkdir -p "$root"

build() {
  local name="$1"; shift
  local env="$root/$name" wanted="$*"
  if [ -f "$env/.pins" ] && [ "$(cat "$env/.pins")" = "$wanted" ]; then
    return 0
  fi
  rm -rf "$env"
  "$python" -m venv "$env"
  "$env/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  printf '%s' "$wanted" > "$env/.pins"
  echo "built $env: $wanted"
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
