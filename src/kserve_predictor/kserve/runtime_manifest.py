"""The ServingRuntime that runs ``kserve-predictor-runtime``, as a pure function.

deploy/kserve-predictor-mlflow.yaml is this function's output for the installed version (a test
keeps the two equal). ``autoSelect: false``: KServe never picks it for a model meant for another
runtime; an InferenceService names it in ``predictor.model.runtime``.
"""

from __future__ import annotations

from typing import Any

from kserve_predictor import __version__
from kserve_predictor.engines.own_runtime import (
    HTTP_PORT,
    IMAGE,
    INSTALL_ENV,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSIONS,
    NAME,
    PACKAGES_DIR,
    PACKAGES_ENV,
    PROTOCOLS,
)
from kserve_predictor.naming import MANAGED_BY

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
