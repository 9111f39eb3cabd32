"""Prometheus metrics of ``sync`` (prometheus_client, the optional ``sync`` extra), in a
registry of their own so that nothing else of the process is exported by accident."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

REGISTRY = CollectorRegistry()
ROLLOUTS = Counter(
    "kserve_predictor_sync_rollouts",
    "Rollouts started by sync, by app and outcome (succeeded, promoted, failed, rolled_back).",
    ["app", "outcome"],
    registry=REGISTRY,
)
LAST_SYNC = Gauge(
    "kserve_predictor_sync_last_sync_timestamp_seconds",
    "When an entry was last compared with its alias (Unix time).",
    ["app"],
    registry=REGISTRY,
)
LAG = Gauge(
    "kserve_predictor_sync_alias_lag_seconds",
    "Seconds from when sync learned the alias moved (webhook or poll) to the new version Ready.",
    ["app"],
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "kserve_predictor_sync_webhooks",
    "Webhook deliveries received, by result (accepted, refused).",
    ["result"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
