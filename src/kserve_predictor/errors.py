"""One exception tree for the whole package.

Every error carries a one-line, user-facing message that names the input at fault and what to
do about it, plus the exit code the CLI returns for it:

    KservePredictorError            exit 1
    ├── RuntimeStartError           exit 1  the model runtime cannot start this model
    ├── UsageError                  exit 2  bad input: fix the command line or environment
    │   ├── ModelUrlError                   the model URL cannot be used
    │   ├── ModelFormatError                the MLmodel is missing, broken or unsupported
    │   ├── PredictorMismatchError          the predictor asked for does not serve this model
    │   ├── StoreAccessError                credentials refused, bucket missing
    │   ├── InvalidRequestError             a prediction request the local server rejects (HTTP 400)
    │   │   └── WrongProtocolError          ... in a protocol its cluster runtime lacks (HTTP 404)
    │   ├── NoKubernetesConfig              nothing configures a cluster (no pod, no kubeconfig)
    │   ├── DeploymentNotFound              no deployment of that name (MLflow: RESOURCE_DOES_NOT_EXIST)
    │   └── KubernetesRefused   *           the Kubernetes API refused the request as made
    │       ├── NotFound        *           404
    │       ├── FieldConflict   * Conflict  409 with field manager conflicts (--force takes over)
    │       ├── Forbidden       *           403, 401 (RBAC, admission webhooks, credentials)
    │       └── Invalid         *           400, 422 (and a field the installed CRD does not declare)
    └── ExternalError               exit 1  a system around the step failed
        ├── StoreError                      the artifact store (S3, local files)
        ├── RegistryError                   the MLflow tracking server
        ├── ClusterError                    the Kubernetes API / KServe
        │   ├── Unavailable     *           429, 5xx, no answer, timeouts (retryable)
        │   ├── WriteConflict   * Conflict  any other 409 (AlreadyExists, a concurrent write)
        │   ├── UnexpectedStatus *          any other status the API answers with
        │   ├── ReadyTimeout                the InferenceService did not become ready in time
        │   └── NotReady                    ... reached a state waiting will not fix
        ├── FuseMLError                     the FuseML server
        ├── LocalServerError                the local model server did not start or answer
        ├── RuntimeLoadError                the local runtime cannot load the layout
        ├── SmokeTestFailed                 the service answered its input example wrongly
        └── PredictionFailed                a deployment answered a prediction request wrongly

``*``: also a ``KubernetesApiError`` (``Conflict``: also a ``Conflict``), which carries the API's ``status`` code, its ``reason`` and
whether another try may succeed (``retryable``): catch ``NotFound`` or ``Forbidden``, never
compare messages or status numbers.

Third-party exceptions are translated at the boundary (``raise ... from e``); only the CLI and
the MLflow plugin turn these into messages and exit codes.
"""

from __future__ import annotations


class KservePredictorError(Exception):
    """Base class: ``str(error)`` is the one-line message shown to the user."""

    exit_code = 1


class RuntimeStartError(KservePredictorError):
    """The model runtime (kserve-predictor-runtime) cannot serve the model: a missing or
    uninstallable requirement, a Python version the image cannot match, a failed load."""


class UsageError(KservePredictorError):
    """The input is wrong; running again unchanged fails again."""

    exit_code = 2


class ModelUrlError(UsageError):
    """The model URL is malformed, has an unknown scheme or points at nothing."""


class ModelFormatError(UsageError):
    """The model folder has no usable MLmodel, or no supported flavor."""


class PredictorMismatchError(UsageError):
    """The predictor engine asked for cannot serve this model's format."""


class StoreAccessError(UsageError):
    """The artifact store refused the credentials, or the bucket does not exist."""


class InvalidRequestError(UsageError):
    """A prediction request the local model server rejects; answered with HTTP 400."""


class ExternalError(KservePredictorError):
    """A system around the step failed; a re-run may succeed once it is fixed."""

    exit_code = 1


class StoreError(ExternalError):
    """The artifact store refused or failed a request."""


class RegistryError(ExternalError):
    """The MLflow tracking server could not resolve a models:/ or runs:/ URL."""


class ClusterError(ExternalError):
    """The Kubernetes API or KServe failed or refused a request."""


class FuseMLError(ExternalError):
    """The FuseML server failed or refused a request."""


class LocalServerError(ExternalError):
    """The local model server did not start, or does not answer."""


class RuntimeLoadError(ExternalError):
    """The local runtime cannot load the converted layout; the message says why."""


class WrongProtocolError(InvalidRequestError):
    """The engine's cluster runtime has no route for this protocol: answered with 404."""


class NoKubernetesConfig(UsageError):
    """Nothing configures a cluster: not in a pod, no --kubeconfig, KUBECONFIG unset and no
    ~/.kube/config. (A configuration that exists but cannot be used is a plain UsageError.)"""


class DeploymentNotFound(UsageError):
    """No deployment of that name (the MLflow plugin answers RESOURCE_DOES_NOT_EXIST)."""


class ReadyTimeout(ClusterError):
    """The InferenceService did not become ready in time."""


class NotReady(ClusterError):
    """The InferenceService reached a state it will not recover from by waiting."""


class SmokeTestFailed(ExternalError):
    """The service answered the input example wrongly, or not at all."""


class PredictionFailed(ExternalError):
    """The deployment answered a prediction request wrongly, or not at all."""


# --- the Kubernetes API's answers, typed by its Status -------------------------------------
#
# The API answers a failure with a meta/v1 Status whose ``code`` is the HTTP status and whose
# ``reason`` "clarifies an HTTP status code but does not override it" (kubernetes/kubernetes,
# staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go, type Status and the StatusReason
# constants): Unauthorized 401, Forbidden 403, NotFound 404, AlreadyExists and Conflict 409,
# Gone 410, Invalid 422, BadRequest 400, TooManyRequests 429, InternalError and ServerTimeout
# 500, ServiceUnavailable 503, Timeout 504. So the code decides the class; the reason is kept.


class KubernetesApiError(KservePredictorError):
    """Mixed into every class for an answer of the Kubernetes API (or its absence)."""

    retryable = False
    """Whether the same request may succeed later, unchanged."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status the API answered with; 0 when it did not answer."""
        self.reason = reason
        """The Status body's ``reason`` ("" when it gave none)."""


class KubernetesRefused(UsageError, KubernetesApiError):
    """The API refused the request as made: running it again unchanged fails again."""


class NotFound(KubernetesRefused):
    """404 NotFound: the object, its namespace or its API is not there."""


class Conflict(KubernetesApiError):
    """409 Conflict or AlreadyExists: another writer changed what this request changes."""


class FieldConflict(KubernetesRefused, Conflict):
    """409 with FieldManagerConflict causes: fields another manager owns (``--force`` takes
    them over)."""


class Forbidden(KubernetesRefused):
    """403 Forbidden (RBAC, an admission webhook) or 401 Unauthorized (the credentials)."""


class Invalid(KubernetesRefused):
    """422 Invalid or 400 BadRequest: the object does not pass validation or the schema."""


class Unavailable(ClusterError, KubernetesApiError):
    """429, 5xx, or no answer at all: another try later may succeed."""

    retryable = True


class WriteConflict(ClusterError, Conflict):
    """Any other 409 (AlreadyExists, a concurrent write): the cluster changed under the request."""


class UnexpectedStatus(ClusterError, KubernetesApiError):
    """Any other failure status the API answers with."""


def kubernetes_error_class(status: int) -> type[KubernetesApiError]:
    """The class for a failure status of the Kubernetes API (see the Status comment above)."""
    if status == 404:
        return NotFound
    if status == 409:
        return WriteConflict
    if status in (401, 403):
        return Forbidden
    if status in (400, 422):
        return Invalid
    if status == 429 or status >= 500 or status == 0:
        return Unavailable
    return UnexpectedStatus
