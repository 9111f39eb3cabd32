"""A custom pyfunc answering a plain Python list, with an MLflow param (``scale``)."""

import mlflow.pyfunc


class ScaledRowSum(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        scale = float((params or {}).get("scale", 1.0))
        return [float(v) * scale for v in model_input.sum(axis=1)]
