"""The embedded local runtime: a converted layout served by KServe's own Python model server.

The same detection and conversion as the KServe path, then the layout is loaded the way the
KServe runtime of its engine loads it (joblib for sklearn, Boosters for XGBoost/LightGBM,
onnxruntime for Triton's model.onnx, TensorFlow's SavedModel loader, mlflow.pyfunc for the
MLflow folder) and served with ``kserve.ModelServer`` at KServe's REST V1 and V2 paths.

Everything here needs the ``serve`` extra (and ``tensorflow`` for TF/Keras); imports are lazy.
"""
