"""The process of the project's own runtime image (kserve-predictor-mlflow): any MLflow model
folder, served through mlflow.pyfunc by KServe's model server, with the model's own requirements
installed at start.

``cli`` is the container's process (``kserve-predictor-runtime``) and ``requirements`` checks
and installs what the model needs. The ClusterServingRuntime that runs the image is
``kserve.runtime_manifest``; ``ops.runtime_install`` applies it. Only ``cli`` imports
kserve/mlflow.
"""
