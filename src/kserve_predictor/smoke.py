"""The smoke test after a deploy: the model's input example, sent to the prediction URL in the
engine's protocol; the answer's shape is checked and the latency reported."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from .errors import ExternalError
from .mlmodel import MLMODEL_MAX_BYTES, ModelInfo
from .modelurl import ModelLocation
from .retry import RetryPolicy

_V2_TYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
    "double": "FP64",
    "long": "INT64",
    "integer": "INT32",
    "float": "FP32",
    "boolean": "BOOL",
}


class SmokeTestFailed(ExternalError):
    """The service answered the input example wrongly, or not at all."""


class _Busy(Exception):
    """A 502/503/504 answer, retried under the retry policy."""

    def __init__(self, response: Any) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class SmokeResult:
    rows: int
    latency_ms: float
    answer: Any


def example_rows(location: ModelLocation, info: ModelInfo) -> list[list[Any]] | None:
    """The input example as rows of values, or None when the model has none usable."""
    example_info = info.input_example or {}
    path = example_info.get("artifact_path")
    if not path:
        return None
    raw = location.store.read(location.key(str(path)), MLMODEL_MAX_BYTES)
    if raw is None:
        return None
    data = json.loads(raw)
    if isinstance(data, dict) and "data" in data:  # pandas split orient
        rows = data["data"]
    elif isinstance(data, dict) and len(data) == 1:  # {"inputs": [...]} or {"X": [...]}
        rows = next(iter(data.values()))
    else:
        rows = data
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], list):
        return None  # not a simple table: nothing we can send without guessing
    return rows


def signature_rows(info: ModelInfo) -> list[list[Any]] | None:
    """One row of zeros shaped like the signature, for a ready-to-run example request when the
    model has no input example (not for the smoke test: zeros prove little)."""
    numeric = {"double", "float", "long", "integer", "float32", "float64", "int32", "int64"}
    if len(info.inputs) == 1 and info.inputs[0].shape and len(info.inputs[0].shape) == 2:
        width = info.inputs[0].shape[1]
        return [[0.0] * width] if width > 0 and info.inputs[0].dtype in numeric else None
    if info.inputs and all(s.shape is None and s.dtype in numeric for s in info.inputs):
        return [[0.0] * len(info.inputs)]
    return None


def build_request(rows: list[list[Any]], protocol: str, info: ModelInfo) -> dict[str, Any]:
    """A V1 ``instances`` or V2 ``inputs`` body for these rows."""
    if protocol == "v1":
        return {"instances": rows}
    first = info.inputs[0] if len(info.inputs) == 1 else None
    name = first.name if first is not None and first.shape is not None and first.name else "input-0"
    dtype = _V2_TYPES.get(first.dtype, "") if first is not None else ""
    if not dtype:
        dtype = "FP64" if any(isinstance(v, float) for row in rows for v in row) else "INT64"
    flat = [v for row in rows for v in row]
    return {
        "inputs": [
            {"name": name, "shape": [len(rows), len(rows[0])], "datatype": dtype, "data": flat}
        ]
    }


def send(
    url: str,
    body: dict[str, Any],
    rows: int,
    protocol: str,
    timeout: float = 30.0,
    verify_tls: bool = True,
    retry: RetryPolicy | None = None,
) -> SmokeResult:
    """POST the example and check the answer has one prediction per row."""
    import requests

    policy = retry or RetryPolicy(seconds=timeout, read_timeout=timeout)

    def attempt(timeouts: tuple[float, float]) -> Any:
        answer = requests.post(url, json=body, timeout=timeouts, verify=verify_tls)
        if answer.status_code in (502, 503, 504):  # the route or the server still warming up
            raise _Busy(answer)
        return answer

    start = time.perf_counter()
    try:
        response = policy.call(f"smoke test {url}", attempt, lambda e: isinstance(e, _Busy))
    except _Busy as e:
        response = e.response
    except requests.RequestException as e:
        raise SmokeTestFailed(
            f"smoke test: {url} did not answer ({type(e).__name__}); pass --no-smoke-test to skip it"
        ) from e
    latency = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise SmokeTestFailed(
            f"smoke test: {url} answered HTTP {response.status_code}: {response.text[:300]}"
        )
    answer = response.json()
    got = _answer_rows(answer, protocol)
    if got != rows:
        raise SmokeTestFailed(
            f"smoke test: {url} answered {got} predictions for {rows} example rows"
        )
    return SmokeResult(rows, latency, answer)


def _answer_rows(answer: Any, protocol: str) -> int | None:
    if protocol == "v1":
        predictions = answer.get("predictions") if isinstance(answer, dict) else None
        return len(predictions) if isinstance(predictions, list) else None
    outputs = answer.get("outputs") if isinstance(answer, dict) else None
    if not outputs or not outputs[0].get("shape"):
        return None
    return int(outputs[0]["shape"][0])


def curl_command(url: str, body: dict[str, Any]) -> str:
    return f"curl -s -H 'Content-Type: application/json' -d '{json.dumps(body)}' {url}"
