"""The local server accepts and rejects requests as each engine's cluster runtime does.

One managed local deployment per engine (the real CLI, real MLflow models), and a table of
requests sent to it: what KServe's sklearn/xgb/lgb servers accept (V1 rows or objects, a single
V2 input whatever its name), Triton's checks of input names, datatypes and shapes, TF Serving's
V1 only; every client mistake answers HTTP 400 (404 for a protocol the runtime lacks) with
KServe's error body ``{"error": "..."}``, one log line and no traceback.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import CliResult, run_cli

ROW = [5.1, 3.5, 1.4, 0.2]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends

# engine → the zoo model it serves
ENGINES = {
    "sklearn": "sklearn_pickle",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "triton": "onnx",
    "tensorflow": "tf_module",
    "mlflow": "pyfunc",
}
TABLE = ("sklearn", "xgboost", "lightgbm")
PROTOCOLS = {"tensorflow": ("v1",), "triton": ("v2",), "mlflow": ("v2",)}  # else both


def v2(name: str = "X", datatype: str = "FP32", shape: Any = (1, 4), data: Any = ROW) -> Any:
    return {"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}]}


@dataclass(frozen=True)
class Case:
    """One request: the protocol route, a JSON body (or raw text), headers, the answer."""

    engines: tuple[str, ...]
    route: str  # v1 | v2
    body: Any
    status: int
    error: str = ""  # a part of the error message (status >= 400)
    headers: dict[str, str] | None = None
    raw: bool = False  # send ``body`` as is, not as JSON


CASES = {
    # accepted as the cluster runtimes accept them
    "v1 rows": Case((*TABLE, "tensorflow"), "v1", {"instances": [ROW, ROW]}, 200),
    "v1 rows without a Content-Type (KServe parses JSON)": Case(
        TABLE, "v1", json.dumps({"instances": [ROW]}), 200, headers={}, raw=True
    ),
    "v1 instances as column objects (KServe's form)": Case(
        TABLE, "v1", {"instances": [{c: [v, v] for c, v in zip(COLUMNS, ROW, strict=True)}]}, 200
    ),
    "v1 instances as lists of records": Case(
        TABLE, "v1", {"instances": [[dict(zip(COLUMNS, ROW, strict=True))]]}, 200
    ),
    "v1 columnar inputs (TF Serving)": Case(("tensorflow",), "v1", {"inputs": [ROW]}, 200),
    "v2 single input named X": Case((*TABLE, "triton"), "v2", v2(), 200),
    "v2 single input of any name": Case((*TABLE, "mlflow"), "v2", v2("rows", "FP64"), 200),
    "v2 columns with content_type pd": Case(
        TABLE,
        "v2",
        {
            "parameters": {"content_type": "pd"},
            "inputs": [
                {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                for c, v in zip(COLUMNS, ROW, strict=True)
            ],
        },
        200,
    ),
    # client mistakes: 400 with KServe's error body
    "not JSON": Case(tuple(ENGINES), "any", "not json", 400, "JSON", headers=JSON, raw=True),
    "a JSON list at the top": Case(tuple(ENGINES), "any", [ROW], 400, "JSON object"),
    "no instances": Case((*TABLE, "tensorflow"), "v1", {"rows": [ROW]}, 400, '"instances"'),
    "no inputs": Case(("triton", "mlflow", *TABLE), "v2", {"rows": [ROW]}, 400, "inputs"),
    "empty instances": Case((*TABLE, "tensorflow"), "v1", {"instances": []}, 400, "non-empty"),
    "empty inputs": Case(("mlflow", *TABLE), "v2", {"inputs": []}, 400, "empty"),
    "v1 rows of the wrong width": Case(
        TABLE, "v1", {"instances": [ROW[:3]]}, 400, "expects 4 features per row, got 3"
    ),
    "v1 objects without a column": Case(
        TABLE,
        "v1",
        {"instances": [[dict(zip(COLUMNS[:3], ROW, strict=False))]]},
        400,
        "lack ['petal",
    ),
    "v1 objects with an unknown column": Case(
        TABLE,
        "v1",
        {"instances": [[{**dict(zip(COLUMNS, ROW, strict=True)), "x": 1}]]},
        400,
        "unknown columns ['x']",
    ),
    "v2 rows that do not match the signature (MLflow)": Case(
        ("mlflow",),
        "v2",
        v2("rows", "FP64", (1, 3), ROW[:3]),
        400,
        "does not match the model's signature",
    ),
    "v1 objects of single values (KServe cannot read them either)": Case(
        TABLE,
        "v1",
        {"instances": [dict(zip(COLUMNS, ROW, strict=True))]},
        400,
        "lists of values",
    ),
    "v1 ragged rows": Case(TABLE, "v1", {"instances": [ROW, ROW[:3]]}, 400, "rows of numbers"),
    "v1 rows of the wrong shape (TF Serving)": Case(
        ("tensorflow",), "v1", {"instances": [ROW[:3]]}, 400, "has shape [1,3]"
    ),
    "v2 input of the wrong width": Case(
        TABLE, "v2", v2(shape=(1, 3), data=ROW[:3]), 400, "expects 4 features per row, got 3"
    ),
    "v2 data that does not fill its shape": Case(
        (*TABLE, "triton", "mlflow"), "v2", v2(shape=(2, 4)), 400, "does not fill shape [2,4]"
    ),
    "v2 two inputs to a one-input model": Case(
        TABLE,
        "v2",
        {"inputs": v2("a")["inputs"] + v2("b")["inputs"]},
        400,
        "takes one input tensor, got 2",
    ),
    "v1 sent as a form (curl -d without -H)": Case(
        (*TABLE, "tensorflow"),
        "v1",
        json.dumps({"instances": [ROW]}),
        400,
        "Content-Type: application/json",
        headers=FORM,
        raw=True,
    ),
    "v2 without a Content-Type": Case(
        (*TABLE, "triton", "mlflow"),
        "v2",
        json.dumps(v2()),
        400,
        "Content-Type: application/json",
        headers={},
        raw=True,
    ),
    # Triton's checks against the model's inputs
    "triton: an input name the model does not have": Case(
        ("triton",), "v2", v2("input-0"), 400, "unexpected inference input 'input-0'"
    ),
    "triton: FP64 for an FP32 input": Case(
        ("triton",), "v2", v2(datatype="FP64"), 400, "data-type is 'FP64', but model"
    ),
    "triton: a shape of the wrong rank": Case(
        ("triton",), "v2", v2(shape=(4,)), 400, "Expected [-1,4], got [4]"
    ),
    "triton: a missing input": Case(
        ("triton",), "v2", {"inputs": []}, 400, "expected 1 inputs but got 0"
    ),
    # a protocol the cluster runtime does not speak: no such route there
    "v1 to a V2-only runtime": Case(("triton", "mlflow"), "v1", {"instances": [ROW]}, 404, "/v2/"),
    "v2 to TF Serving": Case(("tensorflow",), "v2", v2(), 404, "/v1/"),
}


@dataclass
class Served:
    engine: str
    app: str
    base: str
    log: Path


@pytest.fixture(scope="module")
def servers(zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """One managed local deployment per engine, through the CLI (started side by side)."""
    root = tmp_path_factory.mktemp("requests")
    env = {"KSERVE_PREDICTOR_HOME": str(root / "home")}

    def start(engine: str) -> CliResult:
        folder = shutil.copytree(zoo / ENGINES[engine], root / ENGINES[engine])
        return run_cli(
            "deploy", "--target", "local", "--model", str(folder), "--app-name", f"req-{engine}",
            "--predictor", engine, "--no-smoke-test", "--output", "json", env=env,
        )  # fmt: skip

    with ThreadPoolExecutor(len(ENGINES)) as pool:
        done = dict(zip(ENGINES, pool.map(start, ENGINES), strict=True))
    try:
        served: dict[str, Served] = {}
        for engine, result in done.items():
            assert result.code == 0, result.stderr
            answer = json.loads(result.stdout)
            base = answer["prediction_url"].split("/v")[0]
            served[engine] = Served(engine, f"req-{engine}", base, Path(answer["log"]))
        yield served
    finally:
        with ThreadPoolExecutor(len(ENGINES)) as pool:
            list(pool.map(lambda e: run_cli("delete", f"req-{e}", env=env), ENGINES))


def _send(served: Served, route: str, case: Case) -> requests.Response:
    path = f"/v1/models/{served.app}:predict" if route == "v1" else f"/v2/models/{served.app}/infer"
    url = served.base + path
    if case.raw:
        data = case.body.encode() if isinstance(case.body, str) else case.body
        return requests.post(url, data=data, headers=case.headers or {}, timeout=60)
    return requests.post(url, json=case.body, timeout=60)


TABLE_ROWS = [
    pytest.param(engine, label, id=f"{engine}: {label}")
    for label, case in CASES.items()
    for engine in case.engines
]


@pytest.mark.parametrize(("engine", "label"), TABLE_ROWS)
def test_request_table(servers: dict[str, Served], engine: str, label: str) -> None:
    case, served = CASES[label], servers[engine]
    routes = PROTOCOLS.get(engine, ("v1", "v2")) if case.route == "any" else (case.route,)
    for route in routes:
        before = served.log.read_text()
        answer = _send(served, route, case)
        assert answer.status_code == case.status, f"{route}: {answer.text}"
        body = answer.json()
        if case.status == 200:
            assert "predictions" in body or "outputs" in body
            continue
        assert set(body) == {"error"} and isinstance(body["error"], str)
        assert case.error in body["error"], body["error"]
        logged = served.log.read_text()[len(before) :]
        assert logged.count(body["error"]) == 1, logged  # one log line, with the message
        assert "Traceback" not in logged


def test_no_traceback_in_any_log(servers: dict[str, Served]) -> None:
    for served in servers.values():
        text = served.log.read_text()
        assert "Traceback" not in text and " 500 " not in text, (served.engine, text[-2000:])
