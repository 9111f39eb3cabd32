"""``kserve-predictor-runtime``: the process a KServe container runs for this runtime.

    kserve-predictor-runtime --model_name=NAME --model_dir=DIR --http_port=PORT
                             [--grpc_port=PORT] [--workers=N]

The arguments are KServe's model server arguments (kserve.model_server's parser, as the stock
sklearn/xgboost servers take them) plus ``--model_dir``. The order matters: Python version and
requirements first (an install must happen before mlflow imports the model's libraries), then
the load through mlflow.pyfunc, then kserve.ModelServer, which binds 0.0.0.0 as KServe's servers
do in a pod. A model that cannot be served exits 1 with one line naming the cause.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kserve_predictor.errors import KservePredictorError, RuntimeStartError

log = logging.getLogger("kserve_predictor.runtime")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        serve(argv)
    except KservePredictorError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


def serve(argv: list[str]) -> None:
    """Prepare, load and serve the model; returns when the server stops."""
    from kserve_predictor.runtime_image import requirements

    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--model_dir", required=True)
    own.add_argument("--model_name", default="model")
    try:
        early, _ = own.parse_known_args(argv)
    except SystemExit as e:
        raise RuntimeStartError("--model_dir=DIR is required (the MLflow model folder)") from e
    folder = Path(early.model_dir)
    if not (folder / "MLmodel").is_file():
        raise RuntimeStartError(
            f"no MLmodel in {folder}: the storageUri must point at the MLflow model folder "
            "(the one holding MLmodel)"
        )
    requirements.prepare(folder)
    from kserve_predictor.modelserver.workers import share_cpus, usable_cpus

    if not any(a == "--workers" or a.startswith("--workers=") for a in argv):
        argv = [*argv, f"--workers={usable_cpus()}"]  # KServe's default is one process

    kserve = _import_kserve(argv)
    parser = argparse.ArgumentParser(
        prog="kserve-predictor-runtime", parents=[kserve.model_server.parser]
    )
    parser.add_argument("--model_dir", required=True, help="the MLflow model folder")
    args, _ = parser.parse_known_args(argv)
    share_cpus(args.workers)  # before mlflow loads the model's libraries

    from kserve_predictor.modelserver.loaders import RuntimeLoadError
    from kserve_predictor.modelserver.server import build_model

    model = build_model("pyfunc", folder, args.model_name)
    try:
        model.load()
    except RuntimeLoadError as e:
        raise RuntimeStartError(str(e)) from e
    log.info("model %s loaded from %s", args.model_name, folder)
    # The defaults of ModelServer() are KServe's parsed arguments: ports, workers, gRPC.
    kserve.ModelServer().start([model])


def _import_kserve(argv: list[str]) -> Any:
    """kserve parses sys.argv on import: give it exactly the container's arguments."""
    saved = sys.argv
    sys.argv = [saved[0], *argv]
    try:
        import kserve
        import kserve.model_server
    finally:
        sys.argv = saved
    return kserve
