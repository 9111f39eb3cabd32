"""What every predictor engine provides; the engines themselves are one module each."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from kserve_predictor.model.mlmodel import ModelInfo


@dataclass(frozen=True)
class LayoutPlan:
    """How to build the runtime's layout from the model folder.

    ``copies`` maps a destination path (relative to the converted folder) to a source path
    (relative to the model folder); ``generated`` maps a destination path to small file contents.
    """

    copies: dict[str, str] = field(default_factory=dict)
    generated: dict[str, bytes] = field(default_factory=dict)


class Engine:
    """A KServe predictor engine: which models it serves, the layout it loads, how it is named.

    Subclasses set the class attributes and override ``unsupported_reason`` and ``plan``.
    """

    name: str
    """The predictor name users pass (FUSEML_PREDICTOR / --predictor)."""
    model_format: str
    """KServe ``modelFormat.name`` selecting the runtime."""
    legacy_field: str
    """The ``spec.predictor.<field>`` of KServe's legacy spec style."""
    protocol: str
    """Inference protocol of the default runtime: v1 or v2."""
    runtime: str
    """The KServe ClusterServingRuntime that serves it by default (for messages and docs)."""
    formats: tuple[str, ...]
    """Model formats (mlmodel.SKLEARN, ...) this engine can serve at all."""
    explicit_runtime: str | None = None
    """A runtime the InferenceService names (predictor.model.runtime), for runtimes KServe
    never auto-selects; it must be installed in the cluster."""

    def unsupported_reason(self, info: ModelInfo) -> str | None:
        """Why this engine cannot serve the model, with the fix; None when it can."""
        if info.format not in self.formats:
            return f"it is a {info.format} model and {self.name} serves {', '.join(self.formats)}"
        return None

    def plan(self, info: ModelInfo, model_name: str) -> LayoutPlan:
        raise NotImplementedError

    def served_model_name(self, app_name: str) -> str:
        """The model name in prediction paths: the InferenceService name, or for Triton the
        repository folder, which conversion names after the application too."""
        return app_name

    def prediction_path(self, app_name: str, protocol: str = "") -> str:
        """The HTTP path that answers predictions for ``app_name`` in ``protocol`` (by default
        this engine's), on the cluster and on the local target alike."""
        return prediction_path(protocol or self.protocol, self.served_model_name(app_name))


def prediction_path(protocol: str, served_name: str) -> str:
    """The HTTP path a KServe model server answers predictions at (DESIGN.md §3): V1
    ``/v1/models/<name>:predict``, V2 ``/v2/models/<name>/infer``."""
    if protocol == "v1":
        return f"/v1/models/{served_name}:predict"
    return f"/v2/models/{served_name}/infer"


def rename_tree(files: list[str], source_root: str, dest_root: str) -> dict[str, str]:
    """Map every file below ``source_root`` to the same relative path below ``dest_root``."""
    prefix = source_root.rstrip("/") + "/" if source_root else ""
    dest = dest_root.rstrip("/") + "/" if dest_root else ""
    return {dest + f[len(prefix) :]: f for f in files if f.startswith(prefix)}


def pinned_version(requirements: tuple[str, ...], names: tuple[str, ...]) -> str | None:
    """The exact version pinned for any of ``names`` in requirements.txt lines, if any."""
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.name.lower() not in names:
            continue
        for spec in requirement.specifier:
            if spec.operator in ("==", "==="):
                try:
                    return Version(spec.version).base_version
                except InvalidVersion:
                    return None
    return None


IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
