#!/usr/bin/env bash
# README command one: set up, train a model with MLflow into a local folder (no S3, no cluster),
# detect it and convert it for its KServe engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve
model=.kserve-predictor/quickstart/iris
.venv/bin/python examples/train_iris.py "$model" >/dev/null
.venv/bin/kserve-predictor detect "$model"
.venv/bin/kserve-predictor convert "$model" --name iris
