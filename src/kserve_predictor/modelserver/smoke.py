"""The smoke test after a deploy: the model's input example, sent to the prediction URL in the
engine's protocol; the answer's shape is checked and the latency reported.

Only a wrong answer (HTTP 4xx/5xx, not JSON, the wrong number of predictions) fails. A URL that
cannot be reached from here (the default ingress domain example.com does not resolve outside the
cluster; refused; timed out) is reported as ``Unreachable``, for the caller to warn about.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from kserve_predictor.errors import SmokeTestFailed, StoreError
from kserve_predictor.model.mlmodel import ModelInfo
from kserve_predictor.model.urls import ModelLocation
from kserve_predictor.retry import RetryPolicy

log = logging.getLogger("kserve_predictor.smoke")  # stable log channel, not the path

MAX_EXAMPLE_BYTES = 1024 * 1024
"""An input example (or request body) larger than this is not sent: a smoke test proves the
service answers, and model servers refuse large bodies by default."""
INGRESS_DOCS = "https://kserve.github.io/website/latest/get_started/first_isvc/"

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


@dataclass(frozen=True)
class Unreachable:
    """The prediction URL could not be reached from here; says nothing about the service."""

    url: str
    reason: str


def example_rows(location: ModelLocation, info: ModelInfo) -> list[list[Any]] | None:
    """The input example as rows of values, or None when the model has none usable."""
    example_info = info.input_example or {}
    path = example_info.get("artifact_path")
    if not path:
        return None
    key = location.key(str(path))
    size = next((o.size for o in location.listing() if o.key == key), 0)
    if size > MAX_EXAMPLE_BYTES:
        log.warning(
            "the input example %s is %d bytes, more than the %d a smoke test sends: not using it",
            path, size, MAX_EXAMPLE_BYTES,
        )  # fmt: skip
        return None
    try:
        raw = location.store.read(key, MAX_EXAMPLE_BYTES)
    except StoreError as e:
        log.warning("the input example cannot be read (%s): not using it", e)
        return None
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
) -> SmokeResult | Unreachable:
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
    except (requests.ConnectionError, requests.Timeout) as e:
        return Unreachable(url, why_unreachable(e, url))
    except requests.RequestException as e:
        raise SmokeTestFailed(
            f"smoke test: {url} sent a broken answer ({type(e).__name__}); pass --no-smoke-test "
            "to skip it"
        ) from e
    latency = (time.perf_counter() - start) * 1000
    answer = check_answer(url, response.status_code, response.text, rows, protocol)
    return SmokeResult(rows, latency, answer)


def check_answer(url: str, status: int, text: str, rows: int, protocol: str) -> Any:
    """The decoded answer, if it is a 200 with one prediction per example row."""
    if status != 200:
        raise SmokeTestFailed(f"smoke test: {url} answered HTTP {status}: {text[:300]}")
    try:
        answer = json.loads(text)
    except ValueError as e:
        raise SmokeTestFailed(
            f"smoke test: {url} answered HTTP 200 but not JSON: {text[:300]!r}"
        ) from e
    got = _answer_rows(answer, protocol)
    if got != rows:
        raise SmokeTestFailed(
            f"smoke test: {url} answered {got} predictions for {rows} example rows"
        )
    return answer


def why_unreachable(error: Exception, url: str) -> str:
    import requests

    text = str(error)
    if isinstance(error, requests.Timeout):
        return "timed out"
    if "NameResolution" in text or "Name or service not known" in text or "getaddrinfo" in text:
        return f"{urlparse(url).hostname} does not resolve"
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS handshake failed"
    return type(error).__name__


def _answer_rows(answer: Any, protocol: str) -> int | None:
    if not isinstance(answer, dict):
        return None
    if protocol == "v1":
        predictions = answer.get("predictions")
        return len(predictions) if isinstance(predictions, list) else None
    outputs = answer.get("outputs")
    if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], dict):
        return None
    shape = outputs[0].get("shape")
    return int(shape[0]) if isinstance(shape, list) and shape else None


def ingress_command(status_url: str, path: str, body: dict[str, Any]) -> str:
    """The curl that reaches the service from outside through the ingress gateway, with the
    Host header the ingress routes on (KServe's own instructions)."""
    data = json.dumps(body)
    data = f"'{data}'" if len(data) <= 200 else "@request.json"
    return (
        f"curl -H 'Host: {urlparse(status_url).hostname}' -H 'Content-Type: application/json' "
        f"-d {data} http://$INGRESS_HOST:$INGRESS_PORT{path} (INGRESS_HOST and INGRESS_PORT: "
        "the address and port of `kubectl get svc -n istio-system istio-ingressgateway`; "
        f"see {INGRESS_DOCS})"
    )


def curl_command(url: str, body: dict[str, Any]) -> str:
    return f"curl -s -H 'Content-Type: application/json' -d '{json.dumps(body)}' {url}"
