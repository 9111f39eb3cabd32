"""Verify an MLflow webhook delivery the way MLflow signs it.

MLflow 3.x (mlflow/webhooks/delivery.py, ``_generate_hmac_signature`` and
``_send_webhook_request``; header names in mlflow/webhooks/constants.py) sends:

- ``X-MLflow-Delivery-Id``: a uuid4 per delivery;
- ``X-MLflow-Timestamp``: ``str(int(time.time()))``;
- ``X-MLflow-Signature``: ``"v1," + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}"))``
  where ``body`` is the exact request body (``json.dumps`` of the payload), only when the
  webhook has a secret.

So the check needs the raw body bytes, the three headers and the secret; the timestamp must be
recent (replay protection, as Standard Webhooks recommend, which MLflow follows).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE = "X-MLflow-Signature"
TIMESTAMP = "X-MLflow-Timestamp"
DELIVERY_ID = "X-MLflow-Delivery-Id"
VERSION = "v1"
TOLERANCE_SECONDS = 300


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow computes (for tests and the verifier)."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> str:
    """'' when the delivery is MLflow's, signed with ``secret`` and recent; else why not
    (a reason to log, which never contains the body or the secret)."""
    if not secret:
        return "no webhook secret is configured"
    got = {k.lower(): v for k, v in headers.items()}
    signature = got.get(SIGNATURE.lower(), "")
    timestamp = got.get(TIMESTAMP.lower(), "")
    delivery_id = got.get(DELIVERY_ID.lower(), "")
    if not signature:
        return "unsigned"
    if not (timestamp and delivery_id):
        return "missing timestamp or delivery id"
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return "timestamp is not a number"
    if age > tolerance:
        return f"timestamp {int(age)} s away from now"
    expected = sign(secret, delivery_id, timestamp, body)
    # MLflow sends one signature; accept any of a space-separated list (Standard Webhooks).
    if not any(hmac.compare_digest(expected, s) for s in signature.split()):
        return "wrong signature"
    return ""
