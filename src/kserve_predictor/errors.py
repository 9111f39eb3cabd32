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
    │   └── InvalidRequestError             a prediction request the local server rejects (HTTP 400)
    └── ExternalError               exit 1  a system around the step failed
        ├── StoreError                      the artifact store (S3, local files)
        ├── RegistryError                   the MLflow tracking server
        ├── ClusterError                    the Kubernetes API / KServe
        ├── FuseMLError                     the FuseML server
        ├── LocalServerError                the local model server did not start or answer
        └── RuntimeLoadError                the local runtime cannot load the layout

Third-party exceptions are translated at the boundary (``raise ... from e``); only the CLI turns
these into messages and exit codes.
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
