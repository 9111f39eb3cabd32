"""A custom pyfunc needing a library the test environment does not have (roman)."""

import mlflow.pyfunc


class RomanRowSum(mlflow.pyfunc.PythonModel):
    def load_context(self, context):  # type: ignore[no-untyped-def]
        import roman  # installed by the runtime from the model's requirements.txt

        self.roman = roman

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return [self.roman.toRoman(round(v)) for v in model_input.sum(axis=1)]
