"""The plugin's edge: the product's errors as the one exception the ``mlflow`` CLI prints as one
line (``Error: ...``, exit 2 for bad input) instead of a traceback, and its log lines on stderr;
both redacted, with the product's flags spelled as the config keys that do the same here."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
)

from kserve_predictor.errors import DeploymentNotFound, KservePredictorError, UsageError
from kserve_predictor.interfaces.mlflow import config as mlflow_config
from kserve_predictor.redact import RedactingFormatter, Redactor

F = TypeVar("F", bound=Callable[..., Any])


class KServeDeploymentError(MlflowException, click.ClickException):  # type: ignore[misc]
    """An MlflowException the mlflow CLI shows as one line, exiting 2 for bad input."""

    def __init__(self, message: str, error_code: int, exit_code: int) -> None:
        super().__init__(message, error_code=error_code)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance too


def _redactor() -> Redactor:
    return Redactor(
        [os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", "")]
    )


def mlflow_errors(method: F) -> F:
    """The product's errors as KServeDeploymentError: one redacted line, flags spelled as the
    config keys that do the same here."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        log_to_stderr()
        try:
            return method(*args, **kwargs)
        except KservePredictorError as e:
            code = (
                RESOURCE_DOES_NOT_EXIST
                if isinstance(e, DeploymentNotFound)
                else INVALID_PARAMETER_VALUE
                if isinstance(e, UsageError)
                else INTERNAL_ERROR
            )
            message = _redactor()(mlflow_config.as_config_keys(str(e)))
            raise KServeDeploymentError(message, code, e.exit_code) from None

    return wrapper  # type: ignore[return-value]


def log_to_stderr() -> None:
    """Progress and warnings on stderr, redacted, unless the application configured logging."""
    ours = logging.getLogger("kserve_predictor")
    if ours.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_PluginFormatter(_redactor(), "%(levelname)s kserve: %(message)s"))
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    ours.propagate = False


class _PluginFormatter(RedactingFormatter):
    """Log lines redacted, with the product's flags spelled as config keys."""

    def format(self, record: logging.LogRecord) -> str:
        return mlflow_config.as_config_keys(super().format(record))
