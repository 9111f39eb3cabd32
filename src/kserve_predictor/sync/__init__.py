"""``kserve-predictor sync``: keep InferenceServices on MLflow registry aliases.

Layers (each imports only those below it):

- ``service``   HTTP endpoint (webhook, /healthz, /metrics, /status), the polling loop, the worker
- ``reconcile`` one decision for one entry, from the cluster and the registry; every rollout is
                ``deploy.deploy`` (and ``rollout.promote``/``rollback``)
- ``metrics``   prometheus_client (the optional ``sync`` extra)
- ``signature`` MLflow's webhook HMAC, verified
- ``config``    the entries, parsed from YAML

The core deploy path never imports this package.
"""
