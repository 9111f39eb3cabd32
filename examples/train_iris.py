"""Train a small iris classifier and save it as an MLflow model folder (the embedded default).

    python examples/train_iris.py OUTPUT_DIR

The model is saved with cloudpickle serialization, which KServe's sklearn server loads, and an
input example, which the deploy smoke test and the printed curl command use.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main(output: Path) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    import mlflow.sklearn

    logging.getLogger("mlflow").setLevel(logging.ERROR)  # after import: MLflow sets its own level
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    if output.exists():
        shutil.rmtree(output)
    mlflow.sklearn.save_model(
        model, output, serialization_format="cloudpickle", input_example=x.head(2)
    )
    print(output)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".kserve-predictor/quickstart/iris"))
