"""The detect and convert commands, run as separate processes the way users run them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SECRET_KEY, S3Server, run_cli


def test_detect_json_has_the_contract_fields(zoo: Path) -> None:
    result = run_cli("detect", str(zoo / "onnx"), "--output", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["format"] == "onnx" and data["engine"] == "triton"
    assert data["engines"] == ["triton", "mlflow", "pyfunc"] and data["protocol"] == "v2"
    assert data["files"] == ["model.onnx"] and "runtime_version" in data


def test_detect_human_output(zoo: Path) -> None:
    result = run_cli("detect", str(zoo / "tf_module"))
    assert result.code == 0
    assert "format:           tensorflow (tf2model)" in result.stdout
    assert (
        "engine:           tensorflow (runtime kserve-tensorflow-serving, protocol v1)"
        in result.stdout
    )


def test_detect_reports_an_unservable_model_without_failing(zoo: Path) -> None:
    result = run_cli("detect", str(zoo / "sklearn_skops"), "--output", "json")
    assert result.code == 0
    data = json.loads(result.stdout)
    assert data["engine"] is None and "serialization_format='cloudpickle'" in data["problem"]


def test_convert_over_s3_then_no_op(s3: S3Server, s3_model) -> None:
    url = s3_model("sklearn_pickle")
    first = run_cli("convert", url, env=s3.env)
    assert first.code == 0, first.stderr
    assert re.search(
        rf"converted for sklearn: {re.escape(url)}/kserve/sklearn-[0-9a-f]{{16}}/\n", first.stdout
    )
    assert "1 copied" in first.stdout and "copied   model.pkl" in first.stdout
    second = run_cli("convert", url, "--output", "json", env=s3.env)
    data = json.loads(second.stdout)
    assert data["copied"] == [] and data["skipped"] == ["model.pkl"] and data["bytes_copied"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["detect", "gs://b/m"], "unsupported scheme 'gs'"),
        (["convert", "{zoo}/sklearn_skops"], "serialization_format='cloudpickle'"),
        (["convert", "{zoo}/onnx", "--predictor", "sklearn"], "predictor 'sklearn' cannot serve"),
        (["convert", "{zoo}/onnx", "--predictor", "pytorch"], "unknown predictor 'pytorch'"),
        (["detect", "{zoo}/broken_not_yaml"], "not valid YAML"),
        (["detect", "{zoo}/tf_module", "--runtime-version", "bad tag!"], "cannot be an image tag"),
    ],
)
def test_errors_are_one_line_exit_2(zoo: Path, args: list[str], needle: str) -> None:
    result = run_cli(*[a.format(zoo=zoo) for a in args])
    assert result.code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in result.stderr


def test_access_denied_names_the_fix_not_the_secret(s3: S3Server, s3_model) -> None:
    url = s3_model("sklearn_pickle")
    env = {**s3.env, "AWS_SECRET_ACCESS_KEY": SECRET_KEY + "-wrong"}
    # moto accepts any credentials unless IAM is enforced; an unknown bucket still proves the path.
    result = run_cli("detect", "-v", url.replace("mlflow-", "missing-"), env=env)
    assert result.code == 2
    assert "does not exist" in result.stderr
    assert SECRET_KEY not in result.stderr + result.stdout
