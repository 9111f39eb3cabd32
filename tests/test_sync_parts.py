"""The pure parts of `sync`: MLflow's signature checked against MLflow's own signer, the
configuration's errors, and the core deploy path staying free of the sync extra."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from kserve_predictor.errors import UsageError
from kserve_predictor.sync.config import parse_config
from kserve_predictor.sync.signature import verify

SECRET = "whsec-test"


def mlflow_signed(
    body: bytes, delivery: str = "d-1", timestamp: str | None = None
) -> dict[str, str]:
    """Headers as MLflow's delivery code builds them (mlflow/webhooks/delivery.py)."""
    from mlflow.webhooks.constants import (
        WEBHOOK_DELIVERY_ID_HEADER,
        WEBHOOK_SIGNATURE_HEADER,
        WEBHOOK_TIMESTAMP_HEADER,
    )
    from mlflow.webhooks.delivery import _generate_hmac_signature

    timestamp = timestamp or str(int(time.time()))
    return {
        WEBHOOK_DELIVERY_ID_HEADER: delivery,
        WEBHOOK_TIMESTAMP_HEADER: timestamp,
        WEBHOOK_SIGNATURE_HEADER: _generate_hmac_signature(
            SECRET, delivery, timestamp, body.decode()
        ),
    }


BODY = json.dumps({"entity": "model_version_alias", "action": "created",
                   "data": {"name": "iris", "alias": "champion", "version": "2"}}).encode()  # fmt: skip


def test_mlflows_own_signature_verifies() -> None:
    assert verify(SECRET, mlflow_signed(BODY), BODY) == ""


@pytest.mark.parametrize(
    ("headers", "body", "secret", "reason"),
    [
        ({}, BODY, SECRET, "unsigned"),
        (mlflow_signed(BODY), BODY + b" ", SECRET, "wrong signature"),  # body changed
        (mlflow_signed(BODY), BODY, "another", "wrong signature"),
        (mlflow_signed(BODY, timestamp="1000"), BODY, SECRET, "timestamp"),  # a replay
        (mlflow_signed(BODY), BODY, "", "no webhook secret"),
    ],
)
def test_refused(headers: dict[str, str], body: bytes, secret: str, reason: str) -> None:
    assert reason in verify(secret, headers, body)


def test_delivery_id_is_signed() -> None:
    headers = mlflow_signed(BODY)
    headers["X-MLflow-Delivery-Id"] = "d-2"
    assert verify(SECRET, headers, BODY) == "wrong signature"


ENTRY = {"model": "iris", "alias": "champion", "app": "iris", "namespace": "models"}


def test_config_defaults_and_canary() -> None:
    config = parse_config({"entries": [ENTRY, {**ENTRY, "app": "iris-b",
                           "rollout": {"policy": "canary", "percent": 20, "promote_after": 30}}]})  # fmt: skip
    replace, canary = config.entries
    assert (config.interval, replace.policy, replace.options.canary_traffic_percent) == (
        60,
        "replace",
        None,
    )
    assert (canary.canary_percent, canary.promote_after) == (20, 30)
    assert canary.options.canary_traffic_percent == 20


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{**ENTRY, "alias": ""}], "needs 'alias'"),
        ([ENTRY, ENTRY], "more than once"),
        ([{**ENTRY, "rollout": {"policy": "blue-green"}}], "is unknown"),
        ([{**ENTRY, "rollout": {"policy": "canary", "percent": 100}}], "from 1 to 99"),
        ([{**ENTRY, "options": {"canary_traffic_percent": 5}}], "belongs in rollout"),
        ([{**ENTRY, "options": {"min_replicaz": 1}}], "options.min_replicaz"),
        ([{**ENTRY, "app": "Iris_App"}], "Iris_App"),
        ([{**ENTRY, "colour": "red"}], "unknown keys"),
    ],
)
def test_config_errors(entries: list[dict[str, object]], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_config({"entries": entries})


def test_deploy_path_does_not_import_the_sync_extra() -> None:
    code = ("import sys, kserve_predictor.ops.deploy, kserve_predictor.interfaces.cli; "
            "print(sorted(m for m in ('prometheus_client', 'http.server', 'kserve_predictor.sync')"
            " if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
