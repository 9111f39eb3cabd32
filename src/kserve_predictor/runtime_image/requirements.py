"""The model's own requirements, checked against the image and installed when they differ.

MLflow writes the libraries a model needs to ``requirements.txt`` (exact pins) and the Python it
was saved with to ``python_env.yaml``. At start the runtime compares them with what the image
has (importlib.metadata + packaging). Whatever differs is installed with pip into a private
prefix on a writable volume, named by the requirements' digest, so replicas sharing the volume
and restarts reuse it; a file lock keeps concurrent replicas from installing twice, and a marker
file written last says the prefix is complete. pip reads PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
PIP_FIND_LINKS and PIP_NO_INDEX itself, so mirrors and wheelhouses need no flag here.

KSERVE_PREDICTOR_INSTALL: ``auto`` (default) installs only what the image does not satisfy,
``never`` refuses to start when anything is missing, ``always`` installs every requirement.
"""

from __future__ import annotations

import hashlib
import logging
import os
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from kserve_predictor.engines.own_runtime import INSTALL_ENV, PACKAGES_DIR, PACKAGES_ENV
from kserve_predictor.errors import RuntimeStartError

log = logging.getLogger("kserve_predictor.runtime.requirements")  # stable log channel, not the path

DEFAULT_PACKAGES_DIR = PACKAGES_DIR
MODES = ("auto", "never", "always")
# The server itself runs on these: a prefix shadowing them would change the server, not the
# model. Any MLflow 3 loads models saved by older MLflow releases.
SERVER_PACKAGES = frozenset({"mlflow", "mlflow-skinny", "mlflow-tracing", "kserve"})
COMPLETE_MARKER = ".complete"
# Distributions that install the same import package: an image with tensorflow-cpu or
# xgboost-cpu satisfies a model pinning tensorflow or xgboost at that version.
SAME_PACKAGE = {
    "tensorflow": ("tensorflow-cpu",),
    "tensorflow-cpu": ("tensorflow",),
    "xgboost": ("xgboost-cpu",),
    "xgboost-cpu": ("xgboost",),
}


@dataclass(frozen=True)
class Unmet:
    """A requirement the image does not satisfy, and what the image has instead."""

    requirement: Requirement
    found: str | None

    def __str__(self) -> str:
        have = f"the image has {self.found}" if self.found else "it is not in the image"
        return f"{self.requirement} ({have})"


def read_requirements(folder: Path) -> list[Requirement]:
    """The model's requirements.txt as requirements (options and comments skipped)."""
    path = folder / "requirements.txt"
    if not path.is_file():
        return []
    found = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            found.append(Requirement(line))
        except InvalidRequirement as e:
            raise RuntimeStartError(
                f"{path}: {line!r} is not a requirement ({e}); fix the model's requirements.txt"
            ) from e
    return found


def check_python(folder: Path, version: tuple[int, int] = sys.version_info[:2]) -> None:
    """The model's Python (python_env.yaml) must match the image's major.minor version: code
    pickled by value and compiled extensions do not cross Python versions."""
    path = folder / "python_env.yaml"
    if not path.is_file():
        return
    try:
        wanted = str((yaml.safe_load(path.read_text()) or {}).get("python") or "")
    except yaml.YAMLError:
        log.warning("%s is not YAML; not checking the Python version", path)
        return
    parts = wanted.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return
    if (int(parts[0]), int(parts[1])) != version:
        raise RuntimeStartError(
            f"the model was saved with Python {wanted} and this runtime image runs Python "
            f"{version[0]}.{version[1]}; retrain/log the model with Python "
            f"{version[0]}.{version[1]}, or serve it with an image built on Python {parts[0]}.{parts[1]}"
        )


def unmet(requirements: list[Requirement]) -> list[Unmet]:
    """The requirements the running interpreter's packages do not satisfy."""
    missing = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        found = installed_version(requirement.name)
        if found is None or not requirement.specifier.contains(found, prereleases=True):
            missing.append(Unmet(requirement, found))
    return missing


def installed_version(name: str) -> str | None:
    for candidate in (name, *SAME_PACKAGE.get(canonicalize_name(name), ())):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def install_mode(env: Mapping[str, str]) -> str:
    mode = (env.get(INSTALL_ENV) or "auto").strip().lower()
    if mode not in MODES:
        raise RuntimeStartError(
            f"{INSTALL_ENV}={env.get(INSTALL_ENV)!r} is not one of {', '.join(MODES)}"
        )
    return mode


def prepare(folder: Path, env: Mapping[str, str] = os.environ) -> Path | None:
    """Make the model's requirements importable; returns the prefix added to sys.path, if any.

    Raises RuntimeStartError naming the requirement that is missing and cannot be installed.
    """
    check_python(folder)
    mode = install_mode(env)
    requirements = read_requirements(folder)
    server_own = [r for r in requirements if canonicalize_name(r.name) in SERVER_PACKAGES]
    for requirement in server_own:
        log.info("using the image's %s for the model's %s", requirement.name, requirement)
    wanted = [r for r in requirements if r not in server_own]
    missing = unmet(wanted)
    to_install = wanted if mode == "always" else [m.requirement for m in missing]
    if not to_install:
        log.info("the image satisfies all %d requirements of the model", len(requirements))
        return None
    if mode == "never":
        raise RuntimeStartError(
            f"the model needs {missing[0]} and {INSTALL_ENV}=never; use an image that has it, "
            f"or allow installing with {INSTALL_ENV}=auto"
        )
    base = Path(env.get(PACKAGES_ENV) or DEFAULT_PACKAGES_DIR)
    prefix = base / digest(to_install, requirements)
    _install_once(prefix, to_install, requirements)
    site_dir = activate(prefix)
    still = unmet(to_install)
    if still:
        raise RuntimeStartError(
            f"installed the model's requirements into {prefix}, but {still[0]}; "
            "pin a version that has wheels for this Python"
        )
    return site_dir


def digest(to_install: list[Requirement], pins: list[Requirement]) -> str:
    """Names the prefix: what is installed, with which pins, for which Python and platform."""
    text = "\n".join(
        [
            sys.implementation.cache_tag or "",
            sysconfig.get_platform(),
            *sorted(str(r) for r in to_install),
            "--",
            *sorted(str(r) for r in pins),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _install_once(prefix: Path, to_install: list[Requirement], pins: list[Requirement]) -> None:
    """pip install into ``prefix`` unless a previous run (or another replica) completed it."""
    import fcntl

    marker = prefix / COMPLETE_MARKER
    if marker.exists():
        log.info("requirements already installed in %s", prefix)
        return
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        lock = open(prefix.parent / f"{prefix.name}.lock", "w")  # noqa: SIM115 (held below)
    except OSError as e:
        raise RuntimeStartError(
            f"cannot install the model's requirements: {prefix.parent} is not writable "
            f"({e.strerror}); mount a writable volume there or set {PACKAGES_ENV}"
        ) from e
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another replica may be installing the same prefix
        if marker.exists():
            log.info("requirements installed in %s by another replica", prefix)
            return
        _pip_install(prefix, to_install, pins)
        marker.write_text("\n".join(str(r) for r in to_install) + "\n")


def _pip_install(prefix: Path, to_install: list[Requirement], pins: list[Requirement]) -> None:
    names = ", ".join(str(r) for r in to_install)
    log.info("installing %d requirement(s) into %s: %s", len(to_install), prefix, names)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        constraints = Path(scratch) / "constraints.txt"
        # The model's own pins also hold for dependencies pip pulls in.
        constraints.write_text("\n".join(str(r) for r in pins) + "\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--prefix",
            str(prefix),
            "--ignore-installed",  # never uninstall the image's copy: install beside it
            "--no-cache-dir",
            "--no-warn-script-location",
            "--disable-pip-version-check",
            "--quiet",
            "--constraint",
            str(constraints),
            *(str(r) for r in to_install),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
        raise RuntimeStartError(
            f"cannot install the model's requirements ({names}): {errors[0]}; check "
            "PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_FIND_LINKS (a wheelhouse for clusters "
            "without internet)"
        )
    log.info("installed in %.1f s", time.monotonic() - started)


def activate(prefix: Path) -> Path:
    """Put the prefix's site-packages first on sys.path (and on PYTHONPATH for workers)."""
    scheme = sysconfig.get_paths(vars={"base": str(prefix), "platbase": str(prefix)})
    site_dir = Path(scheme["purelib"])
    for path in {site_dir, Path(scheme["platlib"])}:
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
        site.addsitedir(str(path))  # .pth files of the installed packages
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(site_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return site_dir
