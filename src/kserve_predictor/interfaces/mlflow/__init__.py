"""The MLflow deployments plugin, target ``kserve`` (entry point ``mlflow.deployments``)."""
