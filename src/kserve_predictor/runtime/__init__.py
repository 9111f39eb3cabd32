"""The project's own KServe runtime: any MLflow model folder, served through mlflow.pyfunc by
KServe's model server, with the model's own requirements installed at start.

``cli`` is the container's process (``kserve-predictor-runtime``), ``requirements`` checks and
installs what the model needs, ``manifest`` is the ClusterServingRuntime that runs it and
``install`` applies that manifest and finds it in a cluster. Only ``cli`` imports kserve/mlflow.
"""
