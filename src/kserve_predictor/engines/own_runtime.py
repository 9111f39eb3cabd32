"""The project's own runtime image (kserve-predictor-mlflow), as the rest of the package knows it:
its name, image, Python, model format and the environment its process reads.

The engine (``engines.pyfunc``), the compatibility check, the ServingRuntime manifest
(``kserve.runtime_manifest``) and the image's own process (``runtime_image``) all read these,
so each is written once.
"""

from __future__ import annotations

from kserve_predictor import __version__

NAME = "kserve-predictor-mlflow"
IMAGE_REPOSITORY = "ghcr.io/fuseml/kserve-predictor-runtime"
IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
"""The runtime image of this version; ``<IMAGE>-tensorflow`` adds TensorFlow."""
IMAGE_PYTHON = (3, 11)
"""The Python of the runtime image (Dockerfile's python:3.11-slim): models saved with another
major.minor are refused at start. For the compatibility check, with INSTALLS_REQUIREMENTS."""
INSTALLS_REQUIREMENTS = True
"""The runtime pip-installs the model's requirements the image lacks (KSERVE_PREDICTOR_INSTALL)."""
MODEL_FORMAT = "mlflow"
MODEL_FORMAT_VERSIONS = ("1", "2", "3")
PROTOCOLS = ("v1", "v2")
PACKAGES_DIR = "/mnt/packages"
HTTP_PORT = 8080
INSTALL_ENV = "KSERVE_PREDICTOR_INSTALL"
"""auto, never or always: whether the runtime pip-installs the model's requirements at start."""
PACKAGES_ENV = "KSERVE_PREDICTOR_PACKAGES_DIR"
INSTALL_COMMAND = "kserve-predictor install-runtime"
