"""Models for the kserve-predictor-runtime tests, made with real MLflow (beside the zoo, which
stays untouched: changing modelzoo.py rebuilds every model).

    python tests/runtime_models.py OUT_DIR

The conftest fixture ``runtime_zoo`` caches them (tests/zoo_cache.py: <digest>-runtime/), keyed
by this script, the model code in tests/runtime_model_code/ and the installed libraries.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

CODE = Path(__file__).with_name("runtime_model_code")
ROMAN_REQUIREMENT = "roman==4.2"
"""Tiny, pure Python, and not in the test environment: scripts/test.sh puts it in .wheelhouse/."""


def iris():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data, data.target


def sklearn_code_paths(path: Path) -> None:
    """A pipeline calling a function from a package shipped as code_paths (its __init__.py is
    empty: the storage initializer skips it)."""
    import mlflow.sklearn
    from featurize_pkg.features import with_petal_area
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = iris()
    model = make_pipeline(
        FunctionTransformer(with_petal_area), LogisticRegression(max_iter=300)
    ).fit(x, y)
    mlflow.sklearn.save_model(
        model,
        path,
        serialization_format="cloudpickle",
        input_example=x.head(3),
        code_paths=[str(CODE / "featurize_pkg")],
    )


def pyfunc_list(path: Path) -> None:
    import mlflow.pyfunc
    from list_model import ScaledRowSum
    from mlflow.models import infer_signature

    x, _ = iris()
    example = x.head(3)
    signature = infer_signature(example, [1.0, 2.0, 3.0], params={"scale": 1.0})
    mlflow.pyfunc.save_model(
        path,
        python_model=ScaledRowSum(),
        signature=signature,
        input_example=example,
        code_paths=[str(CODE / "list_model.py")],
    )


def pyfunc_roman(path: Path) -> None:
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from roman_model import RomanRowSum

    x, _ = iris()
    example = x.head(3)
    mlflow.pyfunc.save_model(
        path,
        python_model=RomanRowSum(),
        signature=infer_signature(example, ["X", "IX", "IX"]),
        input_example=example,
        code_paths=[str(CODE / "roman_model.py")],
        pip_requirements=[f"mlflow=={mlflow.__version__}", ROMAN_REQUIREMENT],
    )


MAKERS = {
    "sklearn_code_paths": sklearn_code_paths,
    "pyfunc_list": pyfunc_list,
    "pyfunc_roman": pyfunc_roman,
}


def main(out: Path) -> None:
    for name, make in MAKERS.items():
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        make(target)


if __name__ == "__main__":
    sys.path.insert(0, str(CODE))
    main(Path(sys.argv[1]))
