"""The custom pyfunc model of the test zoo: sums each row (shipped with the model as code)."""

import mlflow.pyfunc


class RowSum(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input.sum(axis=1)
