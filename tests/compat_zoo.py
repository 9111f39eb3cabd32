"""Models for the compatibility tests, made by real MLflow with this environment's libraries.

    python tests/compat_zoo.py OUTPUT_DIR

Kept apart from modelzoo.py so that adding one does not rebuild the main zoo. Each is a case the
compatibility check must judge: an XGBoost >= 3.1 regression Booster, a pipeline with code_paths,
a by-value cloudpickle class, ONNX files with IR versions 9 and 10, a LightGBM Booster, a pyfunc
whose loader_module ships nowhere, and a pyfunc whose class comes from a module (by reference).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")


def iris():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


def xgb_regression(path: Path) -> None:
    import mlflow.xgboost
    import xgboost as xgb

    x, _ = iris()
    target = x.pop("petal width (cm)")
    booster = xgb.train(
        {"objective": "reg:squarederror"}, xgb.DMatrix(x, label=target), num_boost_round=5
    )
    mlflow.xgboost.save_model(booster, path, input_example=x.head(3))


def sklearn_pipeline_code(path: Path) -> None:
    import mlflow.sklearn
    from compat_code import Doubler
    from sklearn.pipeline import Pipeline

    x, y = iris()
    model = Pipeline([("double", Doubler()), ("tree", _tree())]).fit(x, y)
    mlflow.sklearn.save_model(
        model,
        path,
        serialization_format="cloudpickle",
        code_paths=[str(Path(__file__).with_name("compat_code.py"))],
        input_example=x.head(3),
    )


def _tree():  # type: ignore[no-untyped-def]
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=3, random_state=0)


def sklearn_byvalue(path: Path) -> None:
    import mlflow.sklearn
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.pipeline import Pipeline

    class Halver(BaseEstimator, TransformerMixin):  # defined here: cloudpickle stores it by value
        def fit(self, x, y=None):  # type: ignore[no-untyped-def]
            return self

        def transform(self, x):  # type: ignore[no-untyped-def]
            return x / 2.0

    x, y = iris()
    model = Pipeline([("halve", Halver()), ("tree", _tree())]).fit(x, y)
    mlflow.sklearn.save_model(model, path, serialization_format="cloudpickle")


def sklearn_tree(path: Path) -> None:
    import mlflow.sklearn

    x, y = iris()
    mlflow.sklearn.save_model(_tree().fit(x, y), path, serialization_format="cloudpickle")


def _onnx(path: Path, ir_version: int) -> None:
    import mlflow.onnx
    import numpy as np
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    x, y = iris()
    model = LogisticRegression(max_iter=300).fit(x.to_numpy(np.float32), y)
    onnx_model = to_onnx(
        model,
        initial_types=[("X", FloatTensorType([None, 4]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    onnx_model.ir_version = ir_version
    mlflow.onnx.save_model(onnx_model, path)


def onnx_ir9(path: Path) -> None:
    _onnx(path, 9)


def onnx_ir10(path: Path) -> None:
    _onnx(path, 10)


def lightgbm_booster(path: Path) -> None:
    import lightgbm as lgb
    import mlflow.lightgbm

    x, y = iris()
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1},
        lgb.Dataset(x, label=y),
        num_boost_round=5,
    )
    mlflow.lightgbm.save_model(booster, path)


def pyfunc_private_loader(path: Path) -> None:
    import mlflow.pyfunc

    blob = path.with_name("acme-private-blob.bin")
    blob.write_bytes(b"\x00acme private format\x00")
    mlflow.pyfunc.save_model(
        path,
        loader_module="acme_private.loader",  # in no package and not in code/
        data_path=str(blob),
        pip_requirements=["mlflow"],
    )
    blob.unlink()


def pyfunc_by_reference(path: Path) -> None:
    import mlflow.pyfunc
    from compat_pyfunc import Constant

    mlflow.pyfunc.save_model(
        path,
        python_model=Constant("cloudpickle"),  # the word as data, not as an import
        code_paths=[str(Path(__file__).with_name("compat_pyfunc.py"))],
        pip_requirements=["mlflow", "cloudpickle"],
    )


MAKERS = {
    f.__name__: f
    for f in (
        xgb_regression,
        sklearn_pipeline_code,
        sklearn_byvalue,
        sklearn_tree,
        onnx_ir9,
        onnx_ir10,
        lightgbm_booster,
        pyfunc_private_loader,
        pyfunc_by_reference,
    )
}

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    out = Path(sys.argv[1])
    for name, make in MAKERS.items():
        if not (out / name).exists():
            make(out / name)
            print(name, flush=True)
