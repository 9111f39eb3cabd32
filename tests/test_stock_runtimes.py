"""The compatibility verdicts, proven in environments with the stock runtimes' own libraries.

scripts/runtime-envs.sh builds .runtime-envs/<runtime> with the versions KServe's default images
ship (sklearnserver: scikit-learn 1.5.2; xgbserver: xgboost 2.1.4; lgbserver: lightgbm 4.6.0;
Triton 23.05: onnxruntime 1.15; Triton 24.05: onnxruntime 1.18). Each model is converted by the
product, loaded there and called exactly as the runtime's model class does (tests/
stock_runtime_loader.py repeats each server's calls, citing its file), and compared with MLflow in
this (training) environment: every ok/adjusted/warning verdict must load and answer equal
predictions, every incompatible one must fail or answer differently. The sklearn server's one
setting, PREDICT_PROBA, is tried both ways: the verdict follows what the user asked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zoo_cache

from kserve_predictor.choice.detect import detect
from kserve_predictor.choice.image_libraries import split_image
from kserve_predictor.choice.verdict import ADJUSTED, INCOMPATIBLE, OK, WARNING
from kserve_predictor.layouts.convert import convert
from kserve_predictor.model.urls import resolve
from kserve_predictor.settings.groups import S3Settings

TESTS = Path(__file__).parent
ROOT = TESTS.parent
ENVS = ROOT / ".runtime-envs"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
# The environment standing in for each image the verdicts name.
ENV_OF_IMAGE = {
    ("kserve/sklearnserver", "v0.20.0"): "sklearnserver",
    ("kserve/xgbserver", "v0.20.0"): "xgbserver",
    ("kserve/lgbserver", "v0.20.0"): "lgbserver",
    ("nvcr.io/nvidia/tritonserver", "23.05-py3"): "triton-23.05",
    ("nvcr.io/nvidia/tritonserver", "24.05-py3"): "triton-24.05",
}
LOADER = {"sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm", "triton": "triton"}


@pytest.fixture(scope="session")
def runtime_envs() -> Path:
    """The stock-runtime environments; built here if scripts/test.sh has not built them."""
    wanted = [ENVS / name / "bin" / "python" for name in set(ENV_OF_IMAGE.values())]
    if not all(p.exists() for p in wanted):
        built = subprocess.run(
            ["bash", str(ROOT / "scripts" / "runtime-envs.sh")], capture_output=True, text=True
        )
        if built.returncode != 0:
            pytest.skip(f"cannot build the stock-runtime environments: {built.stderr[-300:]}")
    return ENVS


@pytest.fixture(scope="session")
def compat_zoo() -> Path:
    """tests/compat_zoo.py's models."""
    return zoo_cache.compat_zoo()


def reference(model: Path, fmt: str, proba: bool) -> dict[str, Any]:
    """What the model answers in the training environment, through MLflow, for the call the
    server makes: predict (mlflow.pyfunc), or predict_proba when PREDICT_PROBA is asked."""
    import mlflow.pyfunc
    import pandas as pd

    rows = pd.DataFrame(ROWS, columns=COLUMNS)
    if fmt == "onnx":
        out = mlflow.pyfunc.load_model(str(model)).predict({"X": np.array(ROWS, np.float32)})
        return {k: np.asarray(v).tolist() for k, v in out.items()}
    if proba:
        import mlflow.sklearn

        return {"predict_proba": mlflow.sklearn.load_model(str(model)).predict_proba(rows).tolist()}
    return {"predict": np.asarray(mlflow.pyfunc.load_model(str(model)).predict(rows)).tolist()}


def in_runtime(
    envs: Path, image: str, engine: str, folder: Path, proba: bool = False
) -> dict[str, Any]:
    env = ENV_OF_IMAGE[split_image(image)]
    environ = {k: v for k, v in os.environ.items() if k != "PREDICT_PROBA"}
    if proba:
        environ["PREDICT_PROBA"] = "true"  # what an --overlay asking for probabilities sets
    done = subprocess.run(
        [
            str(envs / env / "bin" / "python"),
            "-I",
            str(TESTS / "stock_runtime_loader.py"),
            engine,
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,  # with -I: the model code is importable only if the layout carries it
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def answers_equal(expected: dict[str, Any], got: dict[str, Any]) -> bool:
    outputs = got.get("outputs")
    if outputs is None:
        return False
    return all(
        key in outputs
        and np.allclose(np.asarray(outputs[key], float), np.asarray(v, float), atol=1e-5)
        for key, v in expected.items()
    )


CASES = [
    # (zoo, model, predictor, runtime version, PREDICT_PROBA asked, expected verdict)
    ("compat", "xgb_regression", "auto", None, False, INCOMPATIBLE),  # xgboost 3.2 → 2.1.4: +0.5
    # The quickstart's iris LogisticRegression (scikit-learn 1.9 → 1.5.2): the server calls
    # predict, which answers right; only predict_proba (PREDICT_PROBA=true) fails.
    ("zoo", "sklearn_pickle", "sklearn", None, False, WARNING),
    ("zoo", "sklearn_pickle", "sklearn", None, True, INCOMPATIBLE),
    ("compat", "sklearn_pipeline_code", "sklearn", None, False, INCOMPATIBLE),  # code_paths lost
    ("compat", "sklearn_byvalue", "sklearn", None, False, INCOMPATIBLE),  # no cloudpickle
    ("compat", "onnx_ir10", "triton", "23.05-py3", False, INCOMPATIBLE),  # IR 10 on ORT 1.15
    ("compat", "onnx_ir10", "auto", None, False, ADJUSTED),  # → Triton 24.05 (onnxruntime 1.18)
    ("compat", "onnx_ir9", "auto", None, False, OK),
    ("compat", "lightgbm_booster", "auto", None, False, OK),  # lightgbm 4.7 → 4.6
    ("zoo", "lightgbm", "auto", None, False, OK),
    ("compat", "sklearn_tree", "sklearn", None, False, WARNING),  # 1.9 → 1.5.2: loads
    ("compat", "sklearn_tree", "sklearn", None, True, WARNING),  # its predict_proba works too
]


@pytest.mark.slow
@pytest.mark.parametrize(("zoo_name", "name", "predictor", "version", "proba", "expected"), CASES)
def test_verdicts_hold_on_the_stock_runtime_libraries(
    zoo_name: str,
    name: str,
    predictor: str,
    version: str | None,
    proba: bool,
    expected: str,
    zoo: Path,
    compat_zoo: Path,
    runtime_envs: Path,
    tmp_path: Path,
) -> None:
    model = tmp_path / name
    shutil.copytree((zoo if zoo_name == "zoo" else compat_zoo) / name, model)
    detection = detect(resolve(str(model), S3Settings()), predictor, version, predict_proba=proba)
    verdict = detection.compatibility
    assert verdict is not None and verdict.status == expected, verdict
    engine = detection.require_engine()
    assert verdict.image is not None
    layout = convert(detection.location, detection.info, engine, "model")
    folder = Path(layout.location.removeprefix("file://"))
    got = in_runtime(runtime_envs, verdict.image, LOADER[engine.name], folder, proba)
    equal = answers_equal(reference(model, detection.info.format, proba), got)
    if expected in (OK, ADJUSTED, WARNING):
        assert equal, (got, verdict)
    else:
        assert not equal, (got, verdict)


def test_a_pyfunc_whose_loader_module_ships_nowhere_is_judged_on_that(compat_zoo: Path) -> None:
    # An MLflow-made pyfunc with loader_module acme_private.loader and opaque data: the verdict
    # names the module, and claims nothing about pickles (there is none).
    location = resolve(str(compat_zoo / "pyfunc_private_loader"), S3Settings())
    verdict = detect(location, "mlflow").compatibility
    assert verdict is not None and verdict.status == INCOMPATIBLE, verdict
    assert any("acme_private.loader" in p for p in verdict.problems), verdict.problems
    assert not any("pickle" in p for p in verdict.problems), verdict.problems


def test_a_pyfunc_class_from_a_module_is_not_called_pickled_by_value(compat_zoo: Path) -> None:
    # Its python_model pickle mentions "cloudpickle" as data only; its opcodes import the class
    # from compat_code (by reference), which loads under another Python.
    location = resolve(str(compat_zoo / "pyfunc_by_reference"), S3Settings())
    detection = detect(location, "mlflow")
    assert detection.needs is not None and detection.needs.pickle_refs == frozenset()
    verdict = detection.compatibility
    assert verdict is not None
    assert not any("by value" in p for p in verdict.problems), verdict.problems
