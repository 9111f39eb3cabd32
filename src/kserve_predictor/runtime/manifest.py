"""The ServingRuntime that runs ``kserve-predictor-runtime``, as a pure function.

deploy/kserve-predictor-mlflow.yaml is this function's output for the installed version (a test
keeps the two equal). ``autoSelect: false``: KServe never picks it for a model meant for another
runtime; an InferenceService names it in ``predictor.model.runtime``.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..naming import MANAGED_BY
from .requirements import INSTALL_ENV, PACKAGES_ENV

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
RESOURCES = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}


def serving_runtime(namespace: str | None = None, image: str = IMAGE) -> dict[str, Any]:
    """A ClusterServingRuntime, or with ``namespace`` a ServingRuntime in that namespace."""
    metadata: dict[str, Any] = {
        "name": NAME,
        "labels": {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "app.kubernetes.io/version": __version__,
        },
        "annotations": {"serving.kserve.io/server-type": "kserve-predictor"},
    }
    if namespace:
        metadata["namespace"] = namespace
    container = {
        "name": "kserve-container",
        "image": image,
        # KServe substitutes {{.Name}}; the storage initializer downloads to /mnt/models.
        "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", f"--http_port={HTTP_PORT}"],
        "env": [
            {"name": INSTALL_ENV, "value": "auto"},
            {"name": PACKAGES_ENV, "value": PACKAGES_DIR},
        ],
        "volumeMounts": [{"name": "packages", "mountPath": PACKAGES_DIR}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {k: dict(v) for k, v in RESOURCES.items()},
    }
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime" if namespace else "ClusterServingRuntime",
        "metadata": metadata,
        "spec": {
            "annotations": {
                "prometheus.kserve.io/port": str(HTTP_PORT),
                "prometheus.kserve.io/path": "/metrics",
            },
            "supportedModelFormats": [
                {"name": MODEL_FORMAT, "version": v, "autoSelect": False}
                for v in MODEL_FORMAT_VERSIONS
            ],
            "protocolVersions": list(PROTOCOLS),
            "containers": [container],
            # The install prefix for the model's requirements: per pod, writable, non-root.
            # Replace it with a shared volume (or a pre-filled wheelhouse) to install once.
            "volumes": [{"name": "packages", "emptyDir": {}}],
        },
    }
