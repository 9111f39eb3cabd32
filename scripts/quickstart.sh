#!/usr/bin/env bash
# README command one: set up, train an iris model with MLflow into a local folder (no S3, no
# cluster), deploy it with the embedded local runtime (KServe's model server on 127.0.0.1) and
# fetch a real prediction from the URL it prints. Re-running replaces the running server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve
model=.kserve-predictor/quickstart/iris
.venv/bin/python examples/train_iris.py "$model" >/dev/null
.venv/bin/kserve-predictor detect "$model"
echo
url=$(.venv/bin/kserve-predictor deploy --target local --model "$model" --app-name iris | tail -n 1)
echo "prediction URL: $url"
body='{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'
echo "POST $body"
.venv/bin/python - "$url" "$body" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={"Content-Type": "application/json"})
print(json.dumps(json.load(urllib.request.urlopen(request, timeout=30))))
PY
echo
echo "The server keeps running: 'kserve-predictor status iris' shows it, 'kserve-predictor delete iris' stops it (.venv/bin/ on PATH)."
echo "The same model deploys to stock KServe (kserve-sklearnserver, verdict warning: it calls predict, which answers right): kserve-predictor deploy --model <its S3 URL> --app-name iris"
