"""The suite is hermetic: it never reads or changes the user's ~/.kserve-predictor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import TESTS, run_cli


def test_commands_use_the_sessions_home_only() -> None:
    deleted = run_cli("delete", "iris", "--target", "local")
    assert deleted.code == 0 and "nothing named iris" in deleted.stdout, deleted.stderr
    assert "iris" not in run_cli("status").stdout
    home = Path(os.environ.get("KSERVE_PREDICTOR_HOME") or Path.home() / ".kserve-predictor")
    assert not home.is_relative_to(Path.home() / ".kserve-predictor")
    assert home.parent == Path.home().parent  # HOME is the session's too


def test_a_server_in_the_users_home_survives_the_suite(tmp_path: Path) -> None:
    """The quickstart's server `iris` in the real home is neither stopped nor forgotten."""
    user_home = tmp_path / "user"
    apps = user_home / ".kserve-predictor" / "apps"
    apps.mkdir(parents=True)
    record = apps / "iris.json"
    record.write_text(
        '{"name": "iris", "pid": 999999, "host": "127.0.0.1", "port": 8080, "engine": "sklearn",'
        ' "protocol": "v1", "model": "s3://b/m", "folder": "/x", "log": "/x.log",'
        ' "prediction_url": "http://127.0.0.1:8080/v1/models/iris:predict", "started": 0}'
    )
    before = (record.read_bytes(), record.stat().st_mtime_ns)
    env = {k: v for k, v in os.environ.items() if k != "KSERVE_PREDICTOR_HOME"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
         "test_commands_use_the_sessions_home_only", str(TESTS / "test_hermetic.py")],
        env={**env, "HOME": str(user_home)}, cwd=TESTS.parent, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert record.exists() and (record.read_bytes(), record.stat().st_mtime_ns) == before
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(p.name for p in apps.iterdir()) == ["iris.json"]
