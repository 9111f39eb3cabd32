"""The models the tests make with real MLflow, made once and cached by content.

    python tests/zoo_cache.py          # build every zoo now (scripts/test.sh does, before pytest)

A zoo is what one script (tests/modelzoo.py, runtime_models.py, compat_zoo.py) writes. Its cache
key is the digest of the script, the sources it reads, the Python version and the name and
version of every installed distribution but the test and lint tools: a changed script, model
code or library (a new MLflow, scikit-learn, TensorFlow …) makes a new key, so the zoo is
rebuilt, never reused stale.

Where: ``$KSERVE_PREDICTOR_ZOO_CACHE`` if set, else tests/.zoo-cache. The tests never look in the
user's home: scripts/test.sh, not the test session, chooses a cache outside the clone and hands
it over in that variable (see docs/testing.md).

Concurrent builders (xdist workers, two clones sharing a cache) are safe: one builds under an
exclusive lock into a temporary folder that is renamed into place once complete; the others wait
for the lock and then find the finished zoo.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

TESTS = Path(__file__).parent
ROOT = Path(os.environ.get("KSERVE_PREDICTOR_ZOO_CACHE") or TESTS / ".zoo-cache")


# Installed but never part of a model: the project itself (the zoo scripts do not import it) and
# the test and lint tools, so that installing one does not rebuild the zoos.
NOT_IN_MODELS = (
    "fuseml-kserve-predictor",
    "pytest",
    "execnet",
    "coverage",
    "ruff",
    "mypy",
    "types-",
)


def environment_key() -> bytes:
    """The Python version and every other installed distribution's name and version, sorted."""
    names = sorted(
        f"{name}=={d.version}"
        for d in metadata.distributions()
        if (name := (d.metadata["Name"] or "").lower()) and not name.startswith(NOT_IN_MODELS)
    )
    return "\n".join([sys.version, *names]).encode()


def cached_models(script: str, sources: list[Path], prefix: str = "", suffix: str = "") -> Path:
    """The models ``tests/<script>`` makes, built once per content key (see the module doc)."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [TESTS / script, *sources]))
    digest.update(environment_key())
    cache = ROOT / f"{prefix}{digest.hexdigest()[:12]}{suffix}"
    if (cache / ".complete").exists():
        return cache
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT / f"{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if (cache / ".complete").exists():  # another process built it while we waited
            return cache
        building = ROOT / f"{cache.name}.building-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)  # a folder left without .complete: unfinished
        subprocess.run(
            [sys.executable, str(TESTS / script), str(building)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        (building / ".complete").touch()
        building.rename(cache)
    return cache


def zoo() -> Path:
    """The model zoo (tests/modelzoo.py)."""
    return cached_models("modelzoo.py", [TESTS / "pyfunc_model.py"])


def runtime_zoo() -> Path:
    """The runtime tests' extra models (tests/runtime_models.py)."""
    code = sorted((TESTS / "runtime_model_code").rglob("*.py"))
    return cached_models("runtime_models.py", code, suffix="-runtime")


def compat_zoo() -> Path:
    """The compatibility tests' models (tests/compat_zoo.py)."""
    sources = [TESTS / "compat_code.py", TESTS / "compat_pyfunc.py"]
    return cached_models("compat_zoo.py", sources, prefix="compat-")


if __name__ == "__main__":
    for build in (zoo, runtime_zoo, compat_zoo):
        print(build())
