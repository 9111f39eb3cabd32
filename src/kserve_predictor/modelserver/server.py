"""kserve.ModelServer serving one converted layout, bound where we are told.

    python -m kserve_predictor.modelserver.server --engine E --folder F --name N [--host H] --port P
        [--reuse-port] [--control PATH] [--workers N]

KServe's RESTServer hard-codes 0.0.0.0; here the listening socket is bound by us (loopback by
default, IPv6 too) and handed to uvicorn. ``--reuse-port`` lets a new server bind the port its
predecessor still serves on (SO_REUSEPORT), and ``--control`` adds a private Unix socket through
which the supervisor health-checks this very process before stopping the old one.
``--workers N`` adds N-1 processes serving the same socket (``workers``); each is this module
again with ``--fd`` (the inherited socket) and ``--parent`` (the pid that stops it).

Requests follow the engine's cluster runtime (see ``protocol``); client mistakes answer HTTP 400
``{"error": "..."}`` with one log line, without the traceback KServe's handlers log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from kserve_predictor.engines import prediction_path
from kserve_predictor.errors import InvalidRequestError, RuntimeLoadError, WrongProtocolError
from kserve_predictor.modelserver import protocol
from kserve_predictor.modelserver.loaders import Outputs, Runtime, load_runtime

log = logging.getLogger("kserve_predictor.serving")


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
    from kserve.utils.utils import generate_uuid

    style = protocol.STYLES[engine]

    class LayoutModel(kserve.Model):  # type: ignore[name-defined]
        """One converted layout; a data plane model knowing nothing of REST."""

        def __init__(self) -> None:
            super().__init__(name)
            self.runtime: Runtime | None = None
            self._loading: threading.Thread | None = None

        def load(self) -> bool:
            self.runtime = load_runtime(engine, folder)
            self.ready = True
            return True

        def start_loading(self) -> None:
            """Load in the background; requests wait for it (``loaded()``)."""
            self._loading = threading.Thread(target=self._load_logged, daemon=True)
            self._loading.start()
            self.ready = True

        def _load_logged(self) -> None:
            try:
                self.load()
            except RuntimeLoadError as e:
                log.error("%s", e)

        def loaded(self) -> Runtime:
            if self._loading is not None:
                self._loading.join()
            if self.runtime is None:
                raise RuntimeLoadError(f"the model {name} did not load in this worker; see its log")
            return self.runtime

        def __reduce__(self) -> tuple[Any, tuple[str, Path, str]]:
            # KServe's --workers pickles the model into the processes it spawns: each loads
            # its own copy, in the background, because KServe kills a child that does not answer
            # its liveness ping within 5 s, and unpickling happens before that ping is served.
            return loading_model, (engine, folder, name)

        def get_input_types(self) -> list[dict[str, Any]]:
            """The declared inputs, in V2 model metadata (what Triton's metadata lists)."""
            specs = self.loaded().specs if self.ready else ()
            return [
                {"name": s.name, "datatype": s.datatype, "shape": list(s.shape or [])}
                for s in specs
            ]

        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            runtime = self.loaded()
            v2 = isinstance(payload, InferRequest)
            outputs = runtime.predict_with(
                decode(style, payload, v2, runtime, name),
                request_params(payload, InferRequest),
            )
            if v2:
                return InferResponse(
                    model_name=name,
                    infer_outputs=[
                        _v2_output(k, v, payload, InferOutput) for k, v in named(outputs).items()
                    ],
                    response_id=payload.id or generate_uuid(),
                    use_binary_outputs=payload.use_binary_outputs,
                )
            return {"predictions": v1_predictions(outputs)}

    return LayoutModel()


def loading_model(engine: str, folder: Path, name: str) -> Any:
    model = build_model(engine, folder, name)
    model.start_loading()
    return model


def decode(style: str, payload: Any, v2: bool, runtime: Runtime, name: str) -> Any:
    """The request's inputs as the runtime takes them, checked as its cluster runtime does."""
    asked = "v2" if v2 else "v1"
    if asked not in protocol.PROTOCOLS[style]:
        other = protocol.PROTOCOLS[style][0]
        path = prediction_path(other, name)
        raise WrongProtocolError(
            f"this model's cluster runtime speaks only the {other.upper()} protocol: POST {path}"
        )
    if style == "table":
        decode_table = protocol.table_v2 if v2 else protocol.table_v1
        return decode_table(payload, runtime.features, runtime.columns)
    if style == "triton":
        return protocol.triton_v2(payload, runtime.specs, name)
    if style == "tf-serving":
        return protocol.tf_serving_v1(payload, runtime.specs)
    if style == "mlflow-runtime" and not v2:
        return protocol.pyfunc_v1(payload)
    return protocol.pyfunc_v2(payload)


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


def _v2_output(name: str, value: np.ndarray, payload: Any, output_type: type) -> Any:
    value = np.asarray(value)
    if value.dtype.kind in "OUS":
        value = value.astype(np.object_)
    output = output_type(name=name, shape=list(value.shape), datatype=protocol.v2_type(value.dtype))
    output.set_data_from_numpy(value, binary_data=payload.use_binary_outputs)
    return output


# --- HTTP: sockets and error answers ------------------------------------------------------


def listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host`` (a name, IPv4 or IPv6 address) and ``port``."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # a successor may bind this port while we still serve (same user only)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def listen_unix(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(64)
    return sock


def error_handlers() -> dict[Any, Any]:
    """Exception → handler for the FastAPI app: KServe's error body and status, one log line."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve.errors import InvalidInput

    def answer(request: Any, status: int, message: str) -> Any:
        log.warning("%s %s: HTTP %d: %s", request.method, request.url.path, status, message)
        return JSONResponse(status_code=status, content={"error": message})

    async def invalid_request(request: Any, exc: Exception) -> Any:
        status = 404 if isinstance(exc, WrongProtocolError) else 400
        return answer(request, status, str(exc))

    async def invalid_input(request: Any, exc: Exception) -> Any:
        message = str(exc)
        if message.startswith("Unrecognized request format"):
            message = f"the request body is not valid JSON ({message})"
        elif message.startswith("received byte inputs") and "json" not in (
            request.headers.get("content-type") or ""
        ):
            message = (
                "the request body must be JSON, sent with Content-Type: application/json "
                "(or binary tensors with the Inference-Header-Content-Length header)"
            )
        return answer(request, 400, message)

    async def not_a_request(request: Any, exc: Exception) -> Any:
        return answer(request, 400, describe_validation(getattr(exc, "errors", list)()))

    async def failure(request: Any, exc: Exception) -> Any:
        return answer(request, 500, f"{type(exc).__name__}: {exc}")

    return {
        InvalidRequestError: invalid_request,
        InvalidInput: invalid_input,
        RequestValidationError: not_a_request,
        Exception: failure,
    }


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """FastAPI's 422 detail for a V2 body, as one sentence (KServe answers 422 {"detail"})."""
    for error in errors:
        if error.get("type") == "json_invalid":
            return "the request body is not valid JSON; send a V2 inference request object"
    ours = [e for e in errors if "bytes" not in [str(p) for p in e.get("loc", ())]]
    for error in ours:
        where = [str(p) for p in error.get("loc", ()) if p not in ("body", "InferenceRequest")]
        if error.get("type") == "model_attributes_type" and not where:
            return 'the request body must be a JSON object with "inputs"'
        if where:
            return f"the V2 inference request is invalid at {'.'.join(where)}: {error.get('msg')}"
    return "the request body is not a V2 inference request object"


def serve(
    model: Any,
    host: str,
    port: int,
    reuse_port: bool = False,
    control: Path | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve a loaded model in the foreground until interrupted (SIGINT/SIGTERM)."""
    import_kserve()
    from kserve import ModelServer
    from kserve.protocol.rest.server import RESTServer

    sockets = [sock or listen(host, port, reuse_port)]
    if control is not None:
        sockets.append(listen_unix(control))

    class LocalRESTServer(RESTServer):
        def _add_exception_handlers(self, app: Any) -> None:
            super()._add_exception_handlers(app)
            for error, handler in error_handlers().items():
                app.add_exception_handler(error, handler)

        async def start(self) -> None:
            self.create_application()
            await self._server.serve(sockets=sockets)

    class LocalModelServer(ModelServer):
        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            rest = LocalRESTServer(
                "kserve.model_server:app",
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                workers=1,
                grace_period=self.grace_period,
                event_loop=self.event_loop,
                timeout_keep_alive=self.timeout_keep_alive,
            )
            self._rest_server = rest
            self.servers.append(rest.start())
            self.setup_event_loop()
            # A stop signal that comes while the app is still being built, before uvicorn
            # takes the signals over, must stop the server too: kserve's own handler
            # (register_signal_handler) stops only its multiprocess server, and the server
            # then went on serving.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
                signal.signal(sig, lambda *_: setattr(rest._server, "should_exit", True))
            asyncio.run(self._serve())

    try:
        LocalModelServer(
            http_port=port,
            enable_grpc=False,
            workers=1,
            enable_latency_logging=False,
            grace_period=2,
        ).start([model])
    finally:
        if control is not None:
            control.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    from kserve_predictor.modelserver.workers import extra_workers, follow_parent, share_cpus

    parser = argparse.ArgumentParser(prog="kserve-predictor-server")
    parser.add_argument("--engine", required=True)
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--reuse-port", action="store_true")
    parser.add_argument("--control", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    share_cpus(args.workers)  # before a model library loads (workers inherit it)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    )
    log.addHandler(handler)
    log.propagate = False
    try:
        if args.fd is not None:  # a worker beside the first process: its socket is inherited
            follow_parent(args.parent)
            sock = socket.socket(fileno=args.fd)
        else:
            sock = listen(args.host, args.port, args.reuse_port)  # fail fast, before loading
        with extra_workers(args.workers, args.engine, args.folder, args.name, sock):
            model = build_model(args.engine, args.folder, args.name)
            model.load()
            serve(model, args.host, args.port, control=args.control, sock=sock)
    except OSError as e:
        print(
            f"error: cannot listen on {args.host} port {args.port}: {e.strerror}", file=sys.stderr
        )
        return 1
    except RuntimeLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
