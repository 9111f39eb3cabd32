"""What a runtime image contains: the package-data table, or what the user declares.

The table (``data/runtime_libraries.yaml``, sources named in it) maps image repositories and tags
to library versions. An image it does not know is "unknown"; ``--runtime-libraries
'scikit-learn==1.9.1,numpy==2.4.6'`` (FUSEML_RUNTIME_LIBRARIES) says what it contains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from kserve_predictor.errors import UsageError

_DOCKER_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


@dataclass(frozen=True)
class RuntimeLibraries:
    """The library versions inside one runtime image (names canonicalized, e.g. scikit-learn)."""

    image: str
    versions: dict[str, str] = field(default_factory=dict)
    packages: frozenset[str] = frozenset()
    """Every distribution known to be installed (versions' names included); empty if unknown."""
    source: str = "table"
    """table (the shipped facts) or declared (--runtime-libraries)."""

    def version(self, name: str) -> str | None:
        return self.versions.get(canonicalize_name(name))


def split_image(image: str) -> tuple[str, str]:
    """``repo[:tag]`` → (repo without a docker.io prefix, tag or "latest")."""
    repo, tag = image, "latest"
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
    for prefix in _DOCKER_PREFIXES:
        if repo.startswith(prefix):
            repo = repo[len(prefix) :]
    return repo, tag


def with_tag(image: str, tag: str) -> str:
    """The image with its tag replaced, as KServe applies ``runtimeVersion``."""
    last = image.rsplit("/", 1)[-1]
    base = image.rsplit(":", 1)[0] if ":" in last else image
    return f"{base}:{tag}"


@cache
def _table() -> dict[str, list[dict[str, Any]]]:
    text = resources.files("kserve_predictor").joinpath("data/runtime_libraries.yaml").read_text()
    images = yaml.safe_load(text)["images"]
    return {split_image(repo + ":x")[0]: groups for repo, groups in images.items()}


def lookup(image: str) -> RuntimeLibraries | None:
    """The table's facts for ``image`` (repo:tag), or None when the image is not in it."""
    repo, tag = split_image(image)
    for group in _table().get(repo, []):
        if tag in [str(t) for t in group["tags"]]:
            versions: dict[str, str] = {
                canonicalize_name(k): str(v) for k, v in group["libraries"].items()
            }
            packages = {canonicalize_name(p) for p in group.get("packages", [])}
            return RuntimeLibraries(image, versions, frozenset(packages | set(versions)))
    return None


def known_tags(image: str) -> list[tuple[str, RuntimeLibraries]]:
    """Every tag the table knows for the image's repository, in table order, with its facts."""
    repo, _ = split_image(image)
    found = []
    for group in _table().get(repo, []):
        for tag in group["tags"]:
            libraries = lookup(with_tag(image, str(tag)))
            assert libraries is not None
            found.append((str(tag), libraries))
    return found


def parse_declared(text: str | None, image: str, source: str) -> RuntimeLibraries | None:
    """``'scikit-learn==1.9.1,numpy==2.4.6'`` → what the user says the image contains."""
    if text is None or not text.strip():
        return None
    versions: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            requirement = Requirement(item)
        except InvalidRequirement:
            requirement = None
        specs = list(requirement.specifier) if requirement else []
        if requirement is None or len(specs) != 1 or specs[0].operator != "==":
            raise UsageError(
                f"{source}: {item!r} is not NAME==VERSION; use e.g. "
                "'scikit-learn==1.9.1,numpy==2.4.6' (python==3.11 and onnx-ir-max==10 too)"
            )
        versions[canonicalize_name(requirement.name)] = specs[0].version
    return RuntimeLibraries(image, versions, frozenset(versions), source="declared")
