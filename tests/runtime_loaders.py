"""Load a converted layout the way its KServe runtime does, and predict on iris rows.

    python tests/runtime_loaders.py ENGINE FOLDER

Prints a JSON object with the predictions (or the Triton config). Run in a subprocess: it
imports TensorFlow or tritonclient.grpc, which must not share a process with kserve.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def only_file(folder: Path, extensions: tuple[str, ...]) -> Path:
    """Like the KServe servers: exactly one file with a model extension in the folder."""
    found = [p for p in folder.iterdir() if p.is_file() and p.name.endswith(extensions)]
    if len(found) != 1:
        raise SystemExit(f"expected exactly one {extensions} file in {folder}, found {found}")
    return found[0]


def sklearn(folder: Path) -> dict:
    import joblib
    import pandas as pd

    model = joblib.load(only_file(folder, (".joblib", ".pkl", ".pickle")))
    return {"predictions": model.predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()}


def xgboost(folder: Path) -> dict:
    import pandas as pd
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(only_file(folder, (".bst", ".json", ".ubj"))))
    rows = xgb.DMatrix(pd.DataFrame(ROWS, columns=COLUMNS))
    return {"predictions": booster.predict(rows).argmax(axis=1).tolist()}


def lightgbm(folder: Path) -> dict:
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(only_file(folder, (".bst",))))
    return {"predictions": booster.predict(ROWS).argmax(axis=1).tolist()}


def _savedmodel(path: Path) -> dict:
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path), tags=["serve"])
    fn = loaded.signatures["serving_default"]
    name = next(iter(fn.structured_input_signature[1]))
    out = fn(**{name: tf.constant(np.array(ROWS, dtype=np.float32))})
    return {"predictions": next(iter(out.values())).numpy().round(5).tolist()}


def tensorflow(folder: Path) -> dict:
    # TF Serving serves the highest numeric version folder below its base path.
    versions = sorted(
        (p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    return _savedmodel(versions[-1])


def triton(folder: Path) -> dict:
    from google.protobuf import text_format
    from google.protobuf.json_format import MessageToDict
    from tritonclient.grpc import model_config_pb2

    (model_dir,) = [p for p in folder.iterdir() if p.is_dir()]
    config = text_format.Parse(
        (model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    if config.name != model_dir.name:
        raise SystemExit(f"config name {config.name!r} differs from folder {model_dir.name!r}")
    result: dict = {"config": MessageToDict(config)}
    if config.platform == "onnxruntime_onnx":
        import numpy as np
        import onnxruntime

        session = onnxruntime.InferenceSession(
            str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        declared = {i.name for i in config.input}
        actual = {i.name for i in session.get_inputs()}
        if declared and declared != actual:
            raise SystemExit(f"config inputs {declared} differ from the model's {actual}")
        out = session.run(None, {session.get_inputs()[0].name: np.array(ROWS, dtype=np.float32)})
        result["predictions"] = out[0].tolist()
    else:
        result.update(_savedmodel(model_dir / "1" / "model.savedmodel"))
    return result


def mlflow(folder: Path) -> dict:
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(str(folder))
    return {"predictions": list(map(float, model.predict(pd.DataFrame(ROWS, columns=COLUMNS))))}


if __name__ == "__main__":
    engine, folder = sys.argv[1], Path(sys.argv[2])
    sys.path.insert(0, str(Path(__file__).parent))
    print(json.dumps(globals()[engine](folder)))
