"""Load a converted layout and call it exactly as a stock KServe runtime does, inside that
runtime's libraries.

    .runtime-envs/<runtime>/bin/python tests/stock_runtime_loader.py ENGINE FOLDER

Imports only what the runtime image has (no kserve_predictor, no mlflow, and not the kserve
package, which these environments do not carry): each function below repeats the load and predict
calls of the server's model class line by line, citing the file (kserve/kserve at v0.20.0; the
same calls since v0.16.0, and since v0.14.0 apart from the Storage import and xgbserver reading
the file into a bytearray). The request is a v1 ``{"instances": ROWS}``, which kserve's
``get_predict_input`` (python/kserve/kserve/utils/utils.py) turns into ``np.array(instances)``.
Prints one JSON object: ``{"outputs": {<method called>: [...]}}``, or ``{"error": "..."}`` when
loading or predicting fails as it would in the runtime (the server answers 500 or never starts).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def instances():  # type: ignore[no-untyped-def]
    # kserve/utils/utils.py get_predict_input, v1 payload of lists: np.array(instances).
    import numpy as np

    return np.array(ROWS)


def model_file(folder: Path, extensions: tuple[str, ...] | str) -> Path:
    # SKLearnModel/XGBoostModel/LightGBMModel.load: os.listdir(model_dir), the files ending in
    # the extensions; none: ModelMissingError; more than one: RuntimeError.
    found = [
        folder / f for f in os.listdir(folder) if (folder / f).is_file() and f.endswith(extensions)
    ]
    if not found:
        raise FileNotFoundError(f"ModelMissingError: no {extensions} file in {folder}")
    if len(found) > 1:
        raise RuntimeError(f"More than one model file is detected: {found}")
    return found[0]


def sklearn(folder: Path) -> dict:
    # python/sklearnserver/sklearnserver/model.py, SKLearnModel:
    #   load:    self._model = joblib.load(model_files[0])   (MODEL_EXTENSIONS .joblib .pkl .pickle)
    #   predict: if os.environ.get("PREDICT_PROBA", "false").lower() == "true" and
    #            hasattr(self._model, "predict_proba"): self._model.predict_proba(instances)
    #            else: self._model.predict(instances)
    import joblib

    model = joblib.load(model_file(folder, (".joblib", ".pkl", ".pickle")))
    if os.environ.get("PREDICT_PROBA", "false").lower() == "true" and hasattr(
        model, "predict_proba"
    ):
        return {"predict_proba": model.predict_proba(instances()).tolist()}
    return {"predict": model.predict(instances()).tolist()}


def xgboost(folder: Path) -> dict:
    # python/xgbserver/xgbserver/model.py, XGBoostModel (BOOSTER_FILE_EXTENSIONS .bst .json .ubj):
    #   load:    xgb.Booster(params={"nthread": n}, model_file=bytearray(<the file's bytes>))
    #   predict: self._booster.predict(xgb.DMatrix(instances, nthread=n))
    import xgboost as xgb

    data = model_file(folder, (".bst", ".json", ".ubj")).read_bytes()
    booster = xgb.Booster(params={"nthread": 1}, model_file=bytearray(data))
    return {"predict": booster.predict(xgb.DMatrix(instances(), nthread=1)).tolist()}


def lightgbm(folder: Path) -> dict:
    # python/lgbserver/lgbserver/model.py, LightGBMModel (MODEL_EXTENSIONS ".bst"):
    #   load:    Booster(params={"nthread": n}, model_file=model_files[0])
    #   predict: self._booster.predict(get_predict_input(payload, columns=feature_name()))
    #            (the columns apply to dict instances only; lists give np.array)
    from lightgbm import Booster

    booster = Booster(params={"nthread": 1}, model_file=str(model_file(folder, ".bst")))
    return {"predict": booster.predict(instances()).tolist()}


def triton(folder: Path) -> dict:
    # Triton's onnxruntime backend: an InferenceSession on <model>/<version>/model.onnx, run for
    # every output (no model method to choose).
    import numpy as np
    import onnxruntime

    found = [p for p in folder.rglob("*.onnx") if p.is_file()]
    if len(found) != 1:
        raise SystemExit(f"expected exactly one .onnx file in {folder}, found {found}")
    session = onnxruntime.InferenceSession(str(found[0]), providers=["CPUExecutionProvider"])
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
