"""The operations: deploy, status, delete, rollout (promote, rollback), smoke test, runtime install.

They combine the layers below; nothing below imports them."""
