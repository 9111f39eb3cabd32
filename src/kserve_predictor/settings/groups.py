"""Typed settings, built once from CLI flags or the environment and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from kserve_predictor.errors import UsageError
from kserve_predictor.redact import masked_repr
from kserve_predictor.retry import RetryPolicy
from kserve_predictor.settings.serving import ServingOptions
from kserve_predictor.settings.table import default, from_env, parse_bool, positive_number

__all__ = [
    "ClusterSettings",
    "DeploySettings",
    "FuseMLSettings",
    "LocalSettings",
    "NetworkSettings",
    "S3Settings",
    "parse_bool",
    "positive_number",
]


@dataclass(frozen=True)
class NetworkSettings:
    """How every command talks to the systems around it; the same environment for all of
    them (deploy, run, status, delete, detect, convert)."""

    retry_seconds: float = default("retry_seconds")
    """KSERVE_PREDICTOR_RETRY_SECONDS: how long transient failures are retried."""
    k8s_verify_tls: bool = default("k8s_verify_tls")
    """KSERVE_PREDICTOR_K8S_VERIFY_TLS."""
    fuseml_verify_tls: bool = default("fuseml_verify_tls")
    """KSERVE_PREDICTOR_FUSEML_VERIFY_TLS."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NetworkSettings:
        return cls(**from_env(("retry_seconds", "k8s_verify_tls", "fuseml_verify_tls"), env))


@dataclass(frozen=True)
class ClusterSettings:
    """How to reach the Kubernetes API."""

    kubeconfig: str | None = default("kubeconfig")
    """A kubeconfig path; None means in-cluster config in a pod, else $KUBECONFIG/~/.kube/config."""
    context: str | None = default("context")
    """The kubeconfig context to use (--context); None: its current-context."""
    verify_tls: bool = default("k8s_verify_tls")
    """Verify the API server's certificate; opt out with KSERVE_PREDICTOR_K8S_VERIFY_TLS=false."""
    retry_seconds: float = default("retry_seconds")
    """How long transient API failures (5xx, 429, dropped connections) are retried."""

    def __repr__(self) -> str:
        return masked_repr(self)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(seconds=self.retry_seconds)


DEFAULT_FUSEML_URL = "http://fuseml-core.fuseml-core.svc.cluster.local:80"
DEFAULT_FUSEML_SOURCE = "the default address; FUSEML_SERVER_URL is unset"
"""Where the URL came from when the step fell back to the default."""


@dataclass(frozen=True)
class FuseMLSettings:
    """How to reach the FuseML server the service is registered with (fuseml.client.connect)."""

    url: str
    source: str = "FUSEML_SERVER_URL"
    """Where ``url`` came from, for messages (the variable, a flag, the default)."""
    verify_tls: bool = default("fuseml_verify_tls")
    """KSERVE_PREDICTOR_FUSEML_VERIFY_TLS."""
    retry_seconds: float = default("retry_seconds")
    """KSERVE_PREDICTOR_RETRY_SECONDS, as for every other system."""

    def __repr__(self) -> str:
        return masked_repr(self)  # the URL may hold user:password


# Objects up to this size are copied with one CopyObject, larger ones with concurrent
# UploadPartCopy parts of this size (CopyObject's own limit is 5 GiB).
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024**2
_MIN_PART = 5 * 1024**2  # S3's smallest part (all but the last)
_MAX_COPY = 5 * 1024**3  # the largest CopyObject, and the largest part
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Settings:
    """How to reach the MLflow artifact store (MLflow's own variable names)."""

    endpoint_url: str = ""
    """MLFLOW_S3_ENDPOINT_URL; empty means AWS S3. Its scheme decides TLS."""
    access_key_id: str = field(default="", repr=False)
    """AWS_ACCESS_KEY_ID."""
    secret_access_key: str = field(default="", repr=False)
    """AWS_SECRET_ACCESS_KEY; never logged or printed."""
    region: str = DEFAULT_REGION
    """AWS_DEFAULT_REGION / AWS_REGION."""
    verify_tls: bool = default("s3_verify_tls")
    """Verify the endpoint's certificate; opt out with KSERVE_PREDICTOR_S3_VERIFY_TLS=false."""
    retry_seconds: float = default("retry_seconds")
    """KSERVE_PREDICTOR_RETRY_SECONDS, as for every other system."""
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    """KSERVE_PREDICTOR_MULTIPART_THRESHOLD: bytes from which a copy goes part by part (and
    the part size); from 5 MiB, S3's smallest part, to 5 GiB, its largest CopyObject."""

    @property
    def use_https(self) -> bool:
        return urlparse(self.endpoint_url).scheme != "http" if self.endpoint_url else True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        env = os.environ if env is None else env
        endpoint = env.get("MLFLOW_S3_ENDPOINT_URL", "").strip()
        if endpoint:
            parsed = urlparse(endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise UsageError(
                    f"MLFLOW_S3_ENDPOINT_URL={endpoint!r} is not an http(s) URL; "
                    "use e.g. http://minio.example:9000"
                )
        access_key, secret_key = (
            env.get("AWS_ACCESS_KEY_ID", ""),
            env.get("AWS_SECRET_ACCESS_KEY", ""),
        )
        if endpoint and not (access_key and secret_key):
            # A MinIO-style endpoint has no instance roles: without keys nothing can work.
            raise UsageError(
                "no S3 credentials for MLFLOW_S3_ENDPOINT_URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        return cls(
            endpoint_url=endpoint,
            access_key_id=access_key,
            secret_access_key=secret_key,
            region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or DEFAULT_REGION,
            verify_tls=from_env(("s3_verify_tls",), env)["s3_verify_tls"],
            retry_seconds=NetworkSettings.from_env(env).retry_seconds,
            multipart_threshold=_multipart_threshold(env),
        )

    def __repr__(self) -> str:
        return masked_repr(self)

    def secrets(self) -> list[str]:
        """Values that must never appear in output."""
        return [v for v in (self.access_key_id, self.secret_access_key) if v]


def _multipart_threshold(env: Mapping[str, str]) -> int:
    name = "KSERVE_PREDICTOR_MULTIPART_THRESHOLD"
    text = env.get(name, "").strip()
    if not text:
        return DEFAULT_MULTIPART_THRESHOLD
    if not text.isdigit() or not _MIN_PART <= int(text) <= _MAX_COPY:
        raise UsageError(
            f"{name}={text!r} is not a number of bytes from {_MIN_PART} (5 MiB) to {_MAX_COPY} (5 GiB)"
        )
    return int(text)


DRY_RUN_SERVER = "server"
"""Checks against the cluster (its dry-run apply), writes nothing."""
DRY_RUN_CLIENT = "client"
"""Manifests from the model's metadata alone: no Kubernetes API, nothing written."""
DRY_RUN_MODES = (DRY_RUN_CLIENT, DRY_RUN_SERVER)


@dataclass(frozen=True)
class DeploySettings:
    """Everything one deployment needs, from `deploy` flags or the FuseML step environment."""

    model_url: str
    predictor: str = default("predictor")
    app_name: str = default("app_name")
    """The application and InferenceService name (already validated or derived)."""
    stable_name: bool = True
    """False when the name was made up for this run (no codeset): every run makes a new service."""
    runtime_version: str | None = default("runtime_version")
    resources_limits: str | None = default("resources_limits")
    """A YAML/JSON mapping merged over the default limits."""
    namespace: str = ""
    """Where to deploy; empty: the kubeconfig context's namespace (or the pod's), else default."""
    workflow: str = default("workflow")
    project: str = ""
    codeset: str = ""
    timeout: float = default("timeout")
    """Seconds to wait for the InferenceService to become ready."""
    spec_style: str = default("spec_style")
    """auto (probe the ServingRuntime API), model or legacy."""
    dry_run: bool | str = False
    """Write nothing and return the plan. ``"server"`` (``True`` means the same; the CLI's plain
    ``--dry-run``): every check against the cluster and FuseML, the Kubernetes API's own
    dry-run apply included. ``"client"``: the manifests from the model's metadata alone; no
    kubeconfig is read and no Kubernetes or FuseML request is made (deploy.NOT_CHECKED says
    what that leaves unchecked); needs ``namespace``."""
    force: bool = default("force")
    """Adopt an InferenceService of the same name that another owner created, and take over
    fields another field manager set (server-side apply with force)."""
    fuseml: FuseMLSettings | None = None
    """The FuseML server to register with; None skips registration."""
    s3: S3Settings = field(default_factory=S3Settings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    """How to reach the Kubernetes API (kubeconfig, context, TLS, retries)."""
    smoke_test: bool = default("smoke_test")
    """Send the model's input example to the prediction URL after deploying (when it has one)."""
    runtime_libraries: str | None = default("runtime_libraries")
    """What the runtime image contains, for images the table does not know ('numpy==2.2.4,...')."""
    allow_incompatible: bool = default("allow_incompatible")
    """Deploy even when the compatibility check says the runtime cannot serve the model."""
    options: ServingOptions = field(default_factory=ServingOptions)
    """KServe's serving options (canary, autoscaling, mode, protocol, logger, placement)."""

    def __post_init__(self) -> None:
        if not isinstance(self.dry_run, bool) and self.dry_run not in (*DRY_RUN_MODES, ""):
            raise UsageError(
                f"dry run {self.dry_run!r} is unknown; use {' or '.join(DRY_RUN_MODES)}"
            )

    @property
    def dry_run_mode(self) -> str:
        """ "" (a deployment), "server" or "client"."""
        if isinstance(self.dry_run, bool):
            return DRY_RUN_SERVER if self.dry_run else ""
        return self.dry_run

    def __repr__(self) -> str:
        return masked_repr(self)

    def secrets(self) -> list[str]:
        return self.s3.secrets()


DEFAULT_START_TIMEOUT = 120.0
"""Seconds a local server may take to load the model and answer ready, when no --timeout
(or run-local timeout key) says otherwise."""


@dataclass(frozen=True)
class LocalSettings:
    """What ``deploy --target local`` needs; built once by the CLI (or a library user)."""

    model_url: str
    app_name: str
    predictor: str = default("predictor")
    host: str = default("host")
    port: int | None = default("port")
    """None: on a redeploy the running server's port (the URL stays), else a free one."""
    timeout: float = DEFAULT_START_TIMEOUT
    """Seconds the new server may take to load the model and answer ready."""
    smoke_test: bool = default("smoke_test")
    workers: int | None = default("workers")
    """Server processes on the port; None: the CPUs this process may use (``usable_cpus``)."""
    fuseml: FuseMLSettings | None = None
    """The FuseML server to register with; None skips registration."""
    workflow: str = default("workflow")
    s3: S3Settings = field(default_factory=S3Settings)
