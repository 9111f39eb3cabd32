"""``predict`` for the MLflow plugin: MLflow's inputs (a DataFrame, a dict, an array) as the
request the smoke test sends (smoke.build_request), posted to the prediction URL, and the
answer as MLflow's ``{"predictions": ...}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kserve_predictor.errors import PredictionFailed, UsageError
from kserve_predictor.model.mlmodel import ModelInfo

_READY_BODY = ("instances", "inputs")
"""A dict with one of these keys is already a V1/V2 request body: sent as it is."""


def rows_of(inputs: Any) -> list[list[Any]]:
    """Rows of values from a pandas DataFrame, a dict of columns, a 2-D array or list."""
    import numpy as np
    import pandas as pd

    if isinstance(inputs, dict):
        inputs = pd.DataFrame(inputs)
    if isinstance(inputs, pd.DataFrame):
        inputs = inputs.to_numpy()
    array = np.asarray(inputs, dtype=object) if not isinstance(inputs, np.ndarray) else inputs
    if array.ndim != 2 or array.shape[0] == 0:
        raise UsageError(
            f"the inputs are not a table of rows (shape {list(array.shape)}); give a DataFrame, "
            "a 2-D array or a JSON file like [[5.1, 3.5, 1.4, 0.2]]"
        )
    return [[_plain(v) for v in row] for row in array.tolist()]


def _plain(value: Any) -> Any:
    """numpy scalars as JSON numbers."""
    return value.item() if hasattr(value, "item") else value


def request_body(
    inputs: Any, protocol: str, model_info: Callable[[], ModelInfo]
) -> tuple[dict[str, Any], int | None]:
    """The request body and its number of rows (None when the caller wrote the body).
    ``model_info`` is read only for V2, whose tensor name and type come from the signature."""
    if isinstance(inputs, dict) and any(key in inputs for key in _READY_BODY):
        return dict(inputs), None
    from kserve_predictor.modelserver.smoke import build_request

    rows = rows_of(inputs)
    if protocol == "v1":
        return {"instances": rows}, len(rows)
    return build_request(rows, protocol, model_info()), len(rows)


def send(url: str, body: dict[str, Any], timeout: float = 60.0) -> Any:
    """POST the body; the decoded answer of a 200, else PredictionFailed naming the URL."""
    import requests

    from kserve_predictor.modelserver.smoke import why_unreachable

    try:
        answer = requests.post(url, json=body, timeout=(10.0, timeout))
    except (requests.ConnectionError, requests.Timeout) as e:
        raise PredictionFailed(
            f"cannot reach {url} ({why_unreachable(e, url)}); from outside the cluster, go "
            "through the ingress gateway (README: calling a deployment)"
        ) from e
    if answer.status_code != 200:
        raise PredictionFailed(f"{url} answered HTTP {answer.status_code}: {answer.text[:300]}")
    try:
        return answer.json()
    except ValueError as e:
        raise PredictionFailed(
            f"{url} answered HTTP 200 but not JSON: {answer.text[:300]!r}"
        ) from e


def predictions_of(answer: Any, protocol: str, url: str) -> dict[str, Any]:
    """MLflow's response shape: V1's ``predictions`` as they are; V2's outputs reshaped to
    their shape (one output: its values; several: by name)."""
    import numpy as np

    if isinstance(answer, dict) and protocol == "v1" and "predictions" in answer:
        return {"predictions": answer["predictions"]}
    outputs = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(outputs, list) or not outputs:
        raise PredictionFailed(f"{url} answered without predictions: {json.dumps(answer)[:300]}")
    values = {
        str(o.get("name")): np.asarray(o.get("data")).reshape(o.get("shape") or [-1]).tolist()
        for o in outputs
    }
    return {"predictions": next(iter(values.values())) if len(values) == 1 else values}
