"""kserve.ModelServer serving one converted layout, bound to the host we are told.

    python -m kserve_predictor.serving.server --engine E --folder F --name N --host H --port P

KServe's RESTServer hard-codes 0.0.0.0; the server here sets the uvicorn host before it starts,
so the default is loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .runtimes import Outputs, Runtime, load_runtime

log = logging.getLogger(__name__)


def import_kserve() -> Any:
    """Import kserve without letting it parse our command line (it does so on import)."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        import kserve
        import kserve.model_server
    finally:
        sys.argv = saved
    return kserve


def build_model(engine: str, folder: Path, name: str) -> Any:
    kserve = import_kserve()
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
    from kserve.utils.numpy_codec import from_np_dtype
    from kserve.utils.utils import generate_uuid

    class LayoutModel(kserve.Model):  # type: ignore[name-defined]
        """One converted layout; a data plane model knowing nothing of REST."""

        def __init__(self) -> None:
            super().__init__(name)
            self.runtime: Runtime | None = None

        def load(self) -> bool:
            self.runtime = load_runtime(engine, folder)
            self.ready = True
            return True

        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            assert self.runtime is not None
            outputs = self.runtime.predict_with(
                request_inputs(payload, InferRequest), request_params(payload, InferRequest)
            )
            if isinstance(payload, InferRequest):
                return InferResponse(
                    model_name=name,
                    infer_outputs=[
                        _v2_output(k, v, payload, InferOutput, from_np_dtype)
                        for k, v in named(outputs).items()
                    ],
                    response_id=payload.id or generate_uuid(),
                    use_binary_outputs=payload.use_binary_outputs,
                )
            return {"predictions": v1_predictions(outputs)}

    return LayoutModel()


def request_inputs(payload: Any, infer_request_type: Any) -> Any:
    """V1 ``instances`` or V2 ``inputs`` as an array, DataFrame or dict of named arrays."""
    import pandas as pd

    if isinstance(payload, infer_request_type):
        parameters = payload.parameters or {}
        if parameters.get("content_type") == "pd":
            return payload.as_dataframe()
        if len(payload.inputs) == 1:
            only = payload.inputs[0]
            return (
                {only.name: only.as_numpy()}
                if only.name not in ("", "input-0")
                else only.as_numpy()
            )
        return {i.name: i.as_numpy() for i in payload.inputs}
    instances = payload.get("instances", payload.get("inputs"))
    if instances is None:
        raise ValueError('a V1 request needs "instances" (a list of rows)')
    if instances and isinstance(instances[0], dict):
        return pd.DataFrame(instances)
    return np.asarray(instances)


def request_params(payload: Any, infer_request_type: Any) -> dict[str, Any] | None:
    """MLflow params: V2 request ``parameters`` (less KServe's own), V1 ``params`` (the key of
    MLflow's scoring server)."""
    if isinstance(payload, infer_request_type):
        given = dict(payload.parameters or {})
        for kserve_own in ("content_type", "headers", "binary_data_output"):
            given.pop(kserve_own, None)
        return given or None
    params = payload.get("params") if isinstance(payload, dict) else None
    return dict(params) if isinstance(params, dict) and params else None


def named(outputs: Outputs) -> dict[str, np.ndarray]:
    return outputs if isinstance(outputs, dict) else {"output-0": np.asarray(outputs)}


def v1_predictions(outputs: Outputs) -> Any:
    """One output: its rows; several: a dict of named values per row."""
    if not isinstance(outputs, dict):
        return np.asarray(outputs).tolist()
    if len(outputs) == 1:
        return np.asarray(next(iter(outputs.values()))).tolist()
    columns = {k: np.asarray(v).tolist() for k, v in outputs.items()}
    rows = len(next(iter(columns.values())))
    return [{k: v[i] for k, v in columns.items()} for i in range(rows)]


def _v2_output(
    name: str, value: np.ndarray, payload: Any, output_type: type, from_np_dtype: Any
) -> Any:
    value = np.asarray(value)
    if value.dtype.kind in "OUS":
        value = value.astype(np.object_)
    output = output_type(name=name, shape=list(value.shape), datatype=from_np_dtype(value.dtype))
    output.set_data_from_numpy(value, binary_data=payload.use_binary_outputs)
    return output


def serve(model: Any, host: str, port: int) -> None:
    """Serve a loaded model in the foreground until interrupted (SIGINT/SIGTERM)."""
    import_kserve()
    from kserve import ModelServer
    from kserve.protocol.rest.server import RESTServer

    class LoopbackModelServer(ModelServer):
        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            rest = RESTServer(
                "kserve.model_server:app",
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                workers=1,
                grace_period=self.grace_period,
                event_loop=self.event_loop,
                timeout_keep_alive=self.timeout_keep_alive,
            )
            rest.config.host = host  # KServe's RESTServer hard-codes 0.0.0.0
            self._rest_server = rest
            self.servers.append(rest.start())
            self.setup_event_loop()
            self.register_signal_handler()
            asyncio.run(self._serve())

    LoopbackModelServer(
        http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False, grace_period=2
    ).start([model])


def main(argv: list[str] | None = None) -> int:
    from .runtimes import RuntimeLoadError

    parser = argparse.ArgumentParser(prog="kserve-predictor-server")
    parser.add_argument("--engine", required=True)
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        model = build_model(args.engine, args.folder, args.name)
        model.load()
        serve(model, args.host, args.port)
    except RuntimeLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
