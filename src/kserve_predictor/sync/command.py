"""``kserve-predictor sync``: build the parts from flags and the environment, then run."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from kserve_predictor.errors import UsageError
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.settings import build
from kserve_predictor.settings.groups import DeploySettings, S3Settings
from kserve_predictor.sync.config import load
from kserve_predictor.sync.reconcile import Target

log = logging.getLogger("kserve_predictor.sync")
SECRET_ENV = "KSERVE_PREDICTOR_SYNC_WEBHOOK_SECRET"
"""The secret the MLflow webhook was created with; unset: webhooks refused, polling only."""


def run(args: Any, cluster: Cluster) -> list[dict[str, Any]] | None:
    """Serve until SIGTERM/SIGINT (None); with ``--once``, the entries' states after one pass."""
    try:
        from kserve_predictor.sync.service import Sync, serve
    except ImportError as e:  # prometheus_client
        raise UsageError(
            f"sync needs the sync extra ({e}); pip install 'fuseml-kserve-predictor[sync]'"
        ) from e
    if not os.environ.get("MLFLOW_TRACKING_URI", "").strip():
        raise UsageError("sync follows registry aliases: set MLFLOW_TRACKING_URI")
    config = load(args.config)
    if args.interval:
        from dataclasses import replace

        config = replace(config, interval=args.interval)
    cluster_settings = build.cluster(args.kubeconfig, args.context, args.insecure_skip_tls_verify)
    base = DeploySettings(model_url="", s3=S3Settings.from_env(), cluster=cluster_settings)
    secret = os.environ.get(SECRET_ENV, "")
    sync = Sync(config, cluster, Target(base), secret)
    if args.once:  # one pass over every entry, in the foreground (cron, CI, debugging)
        return [sync.sync_one(entry, time.time()).as_dict() for entry in config.entries]
    host, _, port = args.listen.rpartition(":")
    server = serve(sync, host or "0.0.0.0", int(port))
    if not secret:
        log.warning("%s is unset: webhooks are refused, only polling moves services", SECRET_ENV)
    log.info(
        "sync: %d entries, polling every %g s, listening on %s",
        len(config.entries), config.interval, args.listen,
    )  # fmt: skip
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    sync.start()
    done.wait()
    sync.stop()
    server.shutdown()
    return None
