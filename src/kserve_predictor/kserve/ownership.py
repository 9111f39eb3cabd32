"""Who owns an object: this product (its managed-by label) from which FuseML workflow, or
someone else. Deploy refuses to take over, and delete refuses to remove, what is not ours,
unless forced.

The workflow is compared as the label value it was written as (``naming.label_value``), so a
workflow name with a space or over 63 characters still recognizes its own objects.
"""

from __future__ import annotations

from typing import Any

from kserve_predictor.errors import UsageError
from kserve_predictor.naming import MANAGED_BY, label_value

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
WORKFLOW_LABEL = "fuseml/workflow"


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def is_managed(obj: dict[str, Any]) -> bool:
    """Made by this product (by any workflow)."""
    return _labels(obj).get(MANAGED_BY_LABEL) == MANAGED_BY


def is_ours(obj: dict[str, Any], workflow: str) -> bool:
    """Made by this product for this workflow."""
    return is_managed(obj) and _labels(obj).get(WORKFLOW_LABEL, "") == label_value(workflow)


def owner_of(obj: dict[str, Any]) -> str:
    """The owner in words: the FuseML workflow, or the field managers that wrote it."""
    if is_managed(obj):
        return f"FuseML workflow {_labels(obj).get(WORKFLOW_LABEL) or '(none)'!r}"
    fields = (obj.get("metadata") or {}).get("managedFields") or []
    managers = sorted(
        {m.get("manager") for m in fields if m.get("manager") not in (None, MANAGED_BY)}
    )
    return f"another owner ({', '.join(managers) or 'not kserve-predictor'})"


ADOPT = (
    "{what} already exists and belongs to {owner}; choose another app name, or pass --force "
    "(FUSEML_FORCE=true) to adopt it"
)
REMOVE = (
    "{what} belongs to {owner}, not to kserve-predictor, so nothing was deleted; delete it "
    "yourself, or pass --force to delete it anyway"
)


def refuse_unless_ours(
    objects: list[tuple[str, dict[str, Any] | None]], workflow: str | None, message: str
) -> None:
    """Raise for the first existing object that is not ours, with ``message`` (ADOPT, REMOVE).
    ``workflow`` None accepts any workflow of this product."""
    for what, obj in objects:
        if obj is None:
            continue
        ours = is_managed(obj) if workflow is None else is_ours(obj, workflow)
        if not ours:
            raise UsageError(message.format(what=what, owner=owner_of(obj)))


def fuseml_owner_problem(app: dict[str, Any], workflow: str, namespace: str | None) -> str | None:
    """Why a FuseML application is not the one this product registered, or None if it is."""
    if str(app.get("type") or "") != "predictor":
        return f"it is of type {app.get('type')!r}, not a predictor"
    if label_value(str(app.get("workflow") or "")) != label_value(workflow):
        return f"it belongs to FuseML workflow {app.get('workflow')!r}"
    if namespace is not None and str(app.get("k8s_namespace") or "") not in ("", namespace):
        return f"it serves namespace {app.get('k8s_namespace')!r}"
    return None
