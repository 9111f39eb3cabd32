"""Load a converted layout the way a stock KServe runtime does, inside that runtime's libraries.

    .runtime-envs/<runtime>/bin/python tests/stock_runtime_loader.py ENGINE FOLDER

Imports only what the runtime image has (no kserve_predictor, no mlflow). Prints one JSON object:
``{"outputs": {...}}`` with the raw model outputs on the iris rows, or ``{"error": "..."}`` when
loading or predicting fails as it would in the runtime (the server answers 500 or never starts).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def only_file(folder: Path, extensions: tuple[str, ...]) -> Path:
    found = [p for p in folder.rglob("*") if p.is_file() and p.name.endswith(extensions)]
    if len(found) != 1:
        raise SystemExit(f"expected exactly one {extensions} file in {folder}, found {found}")
    return found[0]


def sklearn(folder: Path) -> dict:
    # kserve/sklearnserver: joblib.load of the one model file; predict, and predict_proba for
    # requests asking for probabilities.
    import joblib
    import pandas as pd

    model = joblib.load(only_file(folder, (".joblib", ".pkl", ".pickle")))
    rows = pd.DataFrame(ROWS, columns=COLUMNS)
    outputs = {"predict": model.predict(rows).tolist()}
    if hasattr(model, "predict_proba"):
        outputs["predict_proba"] = model.predict_proba(rows).tolist()
    return outputs


def xgboost(folder: Path) -> dict:
    # kserve/xgbserver: xgb.Booster(model_file=...), predict on a DMatrix.
    import pandas as pd
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(only_file(folder, (".bst", ".json", ".ubj"))))
    return {"predict": booster.predict(xgb.DMatrix(pd.DataFrame(ROWS, columns=COLUMNS))).tolist()}


def lightgbm(folder: Path) -> dict:
    # kserve/lgbserver: lgb.Booster(model_file=model.bst), predict.
    import lightgbm as lgb
    import pandas as pd

    booster = lgb.Booster(model_file=str(only_file(folder, (".bst",))))
    return {"predict": booster.predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()}


def triton(folder: Path) -> dict:
    # Triton's onnxruntime backend: an InferenceSession on <model>/1/model.onnx.
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(only_file(folder, (".onnx",))), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {session.get_inputs()[0].name: np.array(ROWS, dtype=np.float32)})
    return dict(zip(names, (v.tolist() for v in values), strict=True))


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    engine, folder = sys.argv[1], Path(sys.argv[2])
    try:
        result = {"outputs": globals()[engine](folder)}
    except Exception as e:  # the runtime's failure, reported for the test to compare
        result = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result))
