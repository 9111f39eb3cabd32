"""The embedded local runtime: an engine's layout served by KServe's own Python model server.

The same detection and engine layout plan as the KServe path, built in the local cache (the
model's store is only read); the layout is loaded the way the KServe runtime of its engine
loads it (joblib for sklearn, Boosters for XGBoost/LightGBM, onnxruntime for Triton's
model.onnx, TensorFlow's SavedModel loader, mlflow.pyfunc for the MLflow folder) and served with
``kserve.ModelServer`` at KServe's REST V1 and V2 paths, accepting the requests the engine's
cluster runtime accepts.

Modules, one job each (``local`` re-exports the entry points): ``layout`` and ``cache`` (model →
layout on disk), ``registry`` (records, per-name lock), ``supervisor`` (server processes),
``network`` (address checks), ``deployment`` (deploy flow, ``serve``), ``server``, ``protocol``
and ``runtimes`` (the model server process).

Running a model needs the ``serve`` extra (and ``tensorflow`` for TF/Keras); imports are lazy.
"""
