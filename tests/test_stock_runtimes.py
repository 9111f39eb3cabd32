"""The compatibility verdicts, proven in environments with the stock runtimes' own libraries.

scripts/runtime-envs.sh builds .runtime-envs/<runtime> with the versions KServe's default images
ship (sklearnserver: scikit-learn 1.5.2; xgbserver: xgboost 2.1.4; lgbserver: lightgbm 4.6.0;
Triton 23.05: onnxruntime 1.15; Triton 24.05: onnxruntime 1.18). Each model is converted by the
product, loaded there the way the runtime loads it, and compared with mlflow.pyfunc in this
(training) environment: every ok/adjusted verdict must load and answer equal predictions, every
incompatible one must fail or answer differently.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zoo_cache

from kserve_predictor.compatibility import ADJUSTED, INCOMPATIBLE, OK, WARNING
from kserve_predictor.convert import convert
from kserve_predictor.detect import detect
from kserve_predictor.modelurl import resolve
from kserve_predictor.runtime_libraries import split_image
from kserve_predictor.settings import S3Settings

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


def reference(model: Path, fmt: str) -> dict[str, Any]:
    """What the model answers in the training environment, through MLflow."""
    import mlflow.pyfunc
    import pandas as pd

    rows = pd.DataFrame(ROWS, columns=COLUMNS)
    if fmt == "onnx":
        out = mlflow.pyfunc.load_model(str(model)).predict({"X": np.array(ROWS, np.float32)})
        return {k: np.asarray(v).tolist() for k, v in out.items()}
    answers = {"predict": np.asarray(mlflow.pyfunc.load_model(str(model)).predict(rows)).tolist()}
    if fmt == "sklearn":
        import mlflow.sklearn

        answers["predict_proba"] = (
            mlflow.sklearn.load_model(str(model)).predict_proba(rows).tolist()
        )
    return answers


def in_runtime(envs: Path, image: str, engine: str, folder: Path) -> dict[str, Any]:
    env = ENV_OF_IMAGE[split_image(image)]
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
    # (zoo, model, predictor, runtime version, expected verdict)
    ("compat", "xgb_regression", "auto", None, INCOMPATIBLE),  # xgboost 3.2 → 2.1.4: off by 0.5
    ("zoo", "sklearn_pickle", "sklearn", None, INCOMPATIBLE),  # LogisticRegression predict_proba
    ("compat", "sklearn_pipeline_code", "sklearn", None, INCOMPATIBLE),  # code_paths lost
    ("compat", "sklearn_byvalue", "sklearn", None, INCOMPATIBLE),  # no cloudpickle in the image
    ("compat", "onnx_ir10", "triton", "23.05-py3", INCOMPATIBLE),  # IR 10 on onnxruntime 1.15
    ("compat", "onnx_ir10", "auto", None, ADJUSTED),  # → Triton 24.05 (onnxruntime 1.18)
    ("compat", "onnx_ir9", "auto", None, OK),
    ("compat", "lightgbm_booster", "auto", None, OK),  # lightgbm 4.7 → 4.6
    ("zoo", "lightgbm", "auto", None, OK),
    ("compat", "sklearn_tree", "sklearn", None, WARNING),  # 1.9 → 1.5.2: untested, but loads
]


@pytest.mark.slow
@pytest.mark.parametrize(("zoo_name", "name", "predictor", "version", "expected"), CASES)
def test_verdicts_hold_on_the_stock_runtime_libraries(
    zoo_name: str,
    name: str,
    predictor: str,
    version: str | None,
    expected: str,
    zoo: Path,
    compat_zoo: Path,
    runtime_envs: Path,
    tmp_path: Path,
) -> None:
    model = tmp_path / name
    shutil.copytree((zoo if zoo_name == "zoo" else compat_zoo) / name, model)
    detection = detect(resolve(str(model), S3Settings()), predictor, version)
    verdict = detection.compatibility
    assert verdict is not None and verdict.status == expected, verdict
    engine = detection.require_engine()
    assert verdict.image is not None
    layout = convert(detection.location, detection.info, engine, "model")
    folder = Path(layout.location.removeprefix("file://"))
    got = in_runtime(runtime_envs, verdict.image, LOADER[engine.name], folder)
    equal = answers_equal(reference(model, detection.info.format), got)
    if expected in (OK, ADJUSTED, WARNING):
        assert equal, (got, verdict)
    else:
        assert not equal, (got, verdict)
