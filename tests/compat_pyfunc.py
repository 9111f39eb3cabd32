"""A pyfunc model class shipped with a model through MLflow code_paths (compat zoo): cloudpickle
pickles it by reference (module compat_pyfunc, name Constant), not by value."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc


class Constant(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def __init__(self, note: str) -> None:
        self.note = note

    def predict(self, context: Any, model_input: Any, params: Any = None) -> list[float]:
        return [0.0] * len(model_input)
