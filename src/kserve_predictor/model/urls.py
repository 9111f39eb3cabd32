"""Model URLs → a store and the key prefix of the model folder in it.

Accepted: ``s3://bucket/prefix``, local paths and ``file://`` URLs, and the MLflow registry forms
``models:/name/version``, ``models:/name@alias`` and ``runs:/run_id/path``, which are resolved
through the tracking server named by ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from kserve_predictor.errors import ModelUrlError, RegistryError
from kserve_predictor.settings.groups import S3Settings
from kserve_predictor.store import ObjectInfo, Store

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$")
_SCHEMES = "s3://bucket/path, file:///path, a local path, models:/name/version or runs:/run_id/path"


@dataclass
class ModelLocation:
    """Where a model folder lives: its store and the key prefix ('' or ending in '/')."""

    url: str
    store: Store
    prefix: str
    _listing: list[ObjectInfo] | None = field(default=None, repr=False)
    _reads: dict[tuple[str, int, int], bytes | None] = field(default_factory=dict, repr=False)

    def listing(self, refresh: bool = False) -> list[ObjectInfo]:
        """Every object below the model folder, converted layouts included (listed once)."""
        if self._listing is None or refresh:
            self._listing = self.store.list_objects(self.prefix)
        return self._listing

    def read(self, relative: str, max_bytes: int) -> bytes | None:
        """A small file of the model (None when absent), read once: detection runs twice in a
        deploy (before and after the cluster's runtimes are known) and the model's own files do
        not change under it. Not for the conversion's files, which it writes."""
        return self._cached(
            (relative, -1, max_bytes), lambda: self.store.read(self.key(relative), max_bytes)
        )

    def read_range(self, relative: str, start: int, length: int) -> bytes:
        """A ranged read of a model file (a header or trailer), read once (see ``read``)."""
        data = self._cached(
            (relative, start, length),
            lambda: self.store.read_range(self.key(relative), start, length),
        )
        return data or b""

    def _cached(self, key: tuple[str, int, int], fetch: Callable[[], bytes | None]) -> bytes | None:
        if key not in self._reads:
            self._reads[key] = fetch()
        return self._reads[key]

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def relative(self, key: str) -> str:
        return key[len(self.prefix) :]


def resolve(url: str, s3: S3Settings, env: Mapping[str, str] | None = None) -> ModelLocation:
    """Resolve a model URL; raises ModelUrlError naming the URL and the accepted forms."""
    env = os.environ if env is None else env
    url = url.strip()
    if not url:
        raise ModelUrlError(f"the model URL is empty; give one of {_SCHEMES}")
    if url.startswith(("models:/", "runs:/")):
        return resolve(_resolve_registry_uri(url, env), s3, env)
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return _s3_location(url, s3)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ModelUrlError(f"model URL {url!r} names a remote host; use file:///absolute/path")
        return _local_location(url, Path(unquote(parsed.path)))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive, i.e. a path
        raise ModelUrlError(
            f"model URL {url!r} has an unsupported scheme {parsed.scheme!r}; use {_SCHEMES}"
        )
    return _local_location(url, Path(url))


def _s3_location(url: str, s3: S3Settings) -> ModelLocation:
    from kserve_predictor.store.s3 import S3Store

    parsed = urlparse(url)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    if not _BUCKET.match(bucket):
        raise ModelUrlError(
            f"model URL {url!r} has no valid bucket name; use s3://bucket/path/to/model"
        )
    if not prefix:
        raise ModelUrlError(
            f"model URL {url!r} names a bucket but no model folder; use s3://{bucket}/path/to/model"
        )
    return ModelLocation(f"s3://{bucket}/{prefix}", S3Store(bucket, s3), prefix + "/")


def _local_location(url: str, path: Path) -> ModelLocation:
    from kserve_predictor.store.local import LocalStore

    path = path.expanduser().resolve()
    if not path.is_dir():
        raise ModelUrlError(
            f"model URL {url!r}: {path} is not a folder; give the folder holding MLmodel"
        )
    return ModelLocation(path.as_uri(), LocalStore(path), "")


def _resolve_registry_uri(url: str, env: Mapping[str, str]) -> str:
    """Ask the MLflow tracking server where a models:/ or runs:/ URI's artifacts live."""
    tracking_uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if not tracking_uri:
        raise ModelUrlError(
            f"model URL {url!r} needs the MLflow tracking server; set MLFLOW_TRACKING_URI"
        )
    try:
        import mlflow
        from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository
        from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository
    except ImportError as e:
        raise ModelUrlError(
            f"model URL {url!r} needs the MLflow client; pip install 'fuseml-kserve-predictor[mlflow]'"
        ) from e
    mlflow.set_tracking_uri(tracking_uri)
    try:
        url_of_model = (_logged_model_of_run(url) or url) if url.startswith("runs:/") else url
        if url_of_model.startswith("models:/"):
            resolved = ModelsArtifactRepository.get_underlying_uri(url_of_model)
        else:
            resolved = RunsArtifactRepository.get_underlying_uri(url_of_model)
    except Exception as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if (
            "RESOURCE_DOES_NOT_EXIST" in str(getattr(e, "error_code", ""))
            or "not found" in message.lower()
        ):
            raise ModelUrlError(
                f"model URL {url!r} not found in the MLflow registry: {message}"
            ) from e
        raise RegistryError(
            f"cannot resolve {url!r} through the MLflow tracking server: {message}"
        ) from e
    if not resolved.startswith(("s3://", "file://", "/")):  # e.g. mlflow-artifacts:/ (proxied)
        raise ModelUrlError(
            f"model URL {url!r} resolves to {resolved!r}, which the step cannot read; "
            "serve artifacts from S3 (mlflow server --no-serve-artifacts --default-artifact-root s3://…)"
        )
    return resolved


def _logged_model_of_run(url: str) -> str | None:
    """MLflow 3 logs models outside the run: runs:/<id>/<name> means the run's logged model of
    that name, when there is one (MLflow 2 runs keep it in the run's artifacts)."""
    import mlflow
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    run_id, name = RunsArtifactRepository.parse_runs_uri(url)
    if not name or "'" in name:
        return None
    client = mlflow.MlflowClient()
    experiment_id = client.get_run(run_id).info.experiment_id
    for model in client.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"name = '{name}'"
    ):
        if model.source_run_id == run_id:
            return f"models:/{model.model_id}"
    return None
