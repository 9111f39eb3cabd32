"""Real MLflow models for the tests, made by MLflow itself (run as a script in a subprocess).

    python tests/modelzoo.py OUTPUT_DIR [NAME ...]

Each model is saved with ``mlflow.<flavor>.save_model`` into OUTPUT_DIR/NAME. The older layouts
(``tfmodel/``, ``data/model/``) are rebuilt from a real SavedModel with the MLmodel MLflow 1.x/2.x
wrote for them, since current MLflow no longer writes them. A few broken folders cover the
error paths. Training is tiny (iris), so the whole zoo takes seconds plus TensorFlow's import.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

MAKERS: dict[str, Callable[[Path], None]] = {}


def maker(name: str) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    def register(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        MAKERS[name] = fn
        return fn

    return register


def iris():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    return x, y


def _sklearn_model():  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    x, y = iris()
    return LogisticRegression(max_iter=300).fit(x, y), x


@maker("sklearn_pickle")
def sklearn_pickle(path: Path) -> None:
    import mlflow.sklearn

    model, x = _sklearn_model()
    mlflow.sklearn.save_model(
        model, path, serialization_format="cloudpickle", input_example=x.head(3)
    )


@maker("sklearn_skops")
def sklearn_skops(path: Path) -> None:
    import mlflow.sklearn

    model, x = _sklearn_model()
    mlflow.sklearn.save_model(model, path, input_example=x.head(3))  # MLflow's default: skops


@maker("onnx")
def onnx_model(path: Path) -> None:
    import mlflow.onnx
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    model, x = _sklearn_model()
    onnx = to_onnx(
        model,
        initial_types=[("X", FloatTensorType([None, 4]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4), "X")]),
        outputs=Schema(
            [
                TensorSpec(np.dtype("int64"), (-1,), "label"),
                TensorSpec(np.dtype("float32"), (-1, 3), "probabilities"),
            ]
        ),
    )
    example = {"X": x.head(3).to_numpy(dtype=np.float32)}
    mlflow.onnx.save_model(onnx, path, signature=signature, input_example=example)


def _keras_model():  # type: ignore[no-untyped-def]
    import keras
    import numpy as np

    keras.utils.set_random_seed(1)
    x, y = iris()
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x.to_numpy(np.float32), y.to_numpy(), epochs=2, verbose=0)
    return model, x.head(3).to_numpy(np.float32)


@maker("keras_native")
def keras_native(path: Path) -> None:
    import mlflow.tensorflow

    model, example = _keras_model()
    mlflow.tensorflow.save_model(model, path, input_example=example)  # writes data/model.keras


@maker("keras_exported")
def keras_exported(path: Path) -> None:
    import mlflow.keras
    from mlflow.models import infer_signature

    model, example = _keras_model()
    signature = infer_signature(example, model.predict(example, verbose=0))
    mlflow.keras.save_model(model, path, save_exported_model=True, signature=signature)
    # MLflow does not save the example for exported models; store it the way it does elsewhere.
    (path / "input_example.json").write_text(json.dumps({"inputs": example.tolist()}))
    _patch_mlmodel(
        path,
        {
            "saved_input_example_info": {
                "artifact_path": "input_example.json",
                "type": "ndarray",
                "format": "tf-serving",
            }
        },
    )


@maker("tf_module")
def tf_module(path: Path) -> None:
    import mlflow.tensorflow
    import numpy as np
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return x * 2.0

    example = iris()[0].head(3).to_numpy(np.float32)
    mlflow.tensorflow.save_model(Doubler(), path, input_example=example)  # writes tf2model/


@maker("tf_legacy_tfmodel")
def tf_legacy_tfmodel(path: Path) -> None:
    """MLflow 1.x layout: the SavedModel under tfmodel/, described by saved_model_dir."""
    tf_module(path)
    (path / "tf2model").rename(path / "tfmodel")
    _patch_mlmodel(
        path,
        {
            "mlflow_version": "1.30.0",
            "flavors": {
                "tensorflow": {
                    "saved_model_dir": "tfmodel",
                    "meta_graph_tags": ["serve"],
                    "signature_def_key": "serving_default",
                },
                "python_function": {
                    "loader_module": "mlflow.tensorflow",
                    "python_version": "3.8.10",
                    "env": "conda.yaml",
                },
            },
        },
        replace_flavors=True,
    )


@maker("keras_legacy_data_model")
def keras_legacy_data_model(path: Path) -> None:
    """MLflow 2.x layout: a Keras model saved in TF format under data/model/."""
    keras_exported(path)
    _patch_mlmodel(
        path,
        {
            "mlflow_version": "2.9.2",
            "flavors": {
                "tensorflow": {
                    "data": "data",
                    "keras_version": "2.14.0",
                    "model_type": "keras",
                    "save_format": "tf",
                },
                "python_function": {
                    "loader_module": "mlflow.tensorflow",
                    "data": "data",
                    "python_version": "3.10.12",
                },
            },
        },
        replace_flavors=True,
    )


@maker("xgboost")
def xgboost_model(path: Path) -> None:
    import mlflow.xgboost
    import xgboost as xgb

    x, y = iris()
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(x, label=y), num_boost_round=5
    )
    mlflow.xgboost.save_model(booster, path, input_example=x.head(3))


@maker("lightgbm")
def lightgbm_model(path: Path) -> None:
    import lightgbm as lgb
    import mlflow.lightgbm

    x, y = iris()
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1},
        lgb.Dataset(x, label=y),
        num_boost_round=5,
    )
    mlflow.lightgbm.save_model(booster, path, input_example=x.head(3))


@maker("lightgbm_sklearn")
def lightgbm_sklearn(path: Path) -> None:
    import lightgbm as lgb
    import mlflow.lightgbm

    x, y = iris()
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y)
    mlflow.lightgbm.save_model(model, path, input_example=x.head(3))  # model.skops


@maker("pyfunc")
def pyfunc_model(path: Path) -> None:
    import mlflow.pyfunc
    from pyfunc_model import RowSum  # a module file, so the model unpickles anywhere

    x, _ = iris()
    mlflow.pyfunc.save_model(
        path,
        python_model=RowSum(),
        input_example=x.head(3),
        code_paths=[str(Path(__file__).with_name("pyfunc_model.py"))],
    )


# --- broken models -------------------------------------------------------------------------


@maker("broken_no_mlmodel")
def broken_no_mlmodel(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "model.pkl").write_bytes(b"not a model")


@maker("broken_not_yaml")
def broken_not_yaml(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "MLmodel").write_text("flavors: [unclosed\n  : {")


@maker("broken_unknown_flavor")
def broken_unknown_flavor(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "MLmodel").write_text("flavors:\n  h2o:\n    data: model.h2o\n")
    (path / "model.h2o").write_bytes(b"x")


@maker("broken_escaping_path")
def broken_escaping_path(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: ../../secrets/model.pkl\n    serialization_format: cloudpickle\n"
    )


def _patch_mlmodel(path: Path, changes: dict[str, object], replace_flavors: bool = False) -> None:
    import yaml

    meta = yaml.safe_load((path / "MLmodel").read_text())
    for key, value in changes.items():
        if key == "flavors" and not replace_flavors:
            meta["flavors"].update(value)
        else:
            meta[key] = value
    (path / "MLmodel").write_text(yaml.safe_dump(meta))


def main(argv: list[str]) -> None:
    out = Path(argv[0])
    names = argv[1:] or list(MAKERS)
    for name in names:
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        MAKERS[name](target)
        print(name, flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(sys.argv[1:])
