"""kserve-predictor: put an MLflow model behind a KServe prediction service."""

__version__ = "0.1.0"
