"""From a model URL to a layout on local disk that the local runtime loads.

The same detection and engine plan as the KServe path; the plan is executed into the local
cache (``cache.build``), never into the model's store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kserve_predictor.choice.detect import Detection, detect
from kserve_predictor.engines import AUTO, ENGINES, Engine
from kserve_predictor.local.cache import build, cache_folder
from kserve_predictor.model.urls import resolve
from kserve_predictor.settings.groups import S3Settings
from kserve_predictor.store.local import LocalStore

log = logging.getLogger("kserve_predictor.serving.layout")  # stable log channel, not the path


@dataclass(frozen=True)
class LocalLayout:
    """An engine's layout on local disk, ready to be served."""

    detection: Detection
    engine: Engine
    folder: Path
    name: str
    fetched: list[str]

    @property
    def model(self) -> str:
        """The model as recorded: an absolute folder path, or the store URL."""
        store = self.detection.location.store
        return str(store.root) if isinstance(store, LocalStore) else self.detection.location.url


def choose(model_url: str, predictor: str, s3: S3Settings) -> tuple[Detection, Engine]:
    """Detect the model and its engine; reads metadata only.

    With ``auto``, a model no KServe runtime loads as logged (skops sklearn, native Keras) is
    served through MLflow's pyfunc locally, since that needs no conversion of model bytes.
    """
    detection = detect(resolve(model_url, s3), predictor)
    engine = detection.engine
    if engine is None and (predictor or AUTO).strip().lower() == AUTO:
        log.warning("%s; serving it locally through mlflow.pyfunc instead", detection.problem)
        engine = ENGINES["mlflow"]
    return detection, engine or detection.require_engine()


def build_layout(detection: Detection, engine: Engine, name: str) -> LocalLayout:
    """Execute the engine's plan into the local cache (downloads only what changed)."""
    location = detection.location
    folder = cache_folder(location.url, engine.name, name)
    fetched = build(location, engine.plan(detection.info, name), folder)
    log.debug("layout for %s in %s (%d files refreshed)", location.url, folder, len(fetched))
    return LocalLayout(detection, engine, folder, name, fetched)


def prepare(model_url: str, predictor: str, name: str, s3: S3Settings) -> LocalLayout:
    detection, engine = choose(model_url, predictor, s3)
    return build_layout(detection, engine, name)
