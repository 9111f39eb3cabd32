"""Kubernetes API answers as the package's exceptions: the class the Status says (errors.py),
with a message that holds the API's own reason and the fix; and which failures are worth
another try."""

from __future__ import annotations

import re
from typing import Any

from kserve_predictor.errors import (
    FieldConflict,
    Forbidden,
    Invalid,
    KubernetesApiError,
    NotFound,
    kubernetes_error_class,
)
from kserve_predictor.retry import TRANSIENT_STATUSES


def transient(error: Exception) -> bool:
    """Worth another try: a transport failure, throttling or a server-side failure that is
    not a known permanent one (an apply of fields the CRD does not declare)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as TransportError

    if isinstance(error, ApiException):
        return error.status in TRANSIENT_STATUSES and not _undeclared_field(error)
    return isinstance(error, (TransportError, OSError))


def _body(error: Any) -> dict[str, Any]:
    import json

    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


_UNDECLARED = re.compile(r"(\.[^\s:]+): field not declared in schema")


def _undeclared_field(error: Any) -> str | None:
    """The field a 500 "failed to create typed patch object" names: the server-side apply of
    a field the installed CRD does not declare (a newer manifest than the KServe installed)."""
    message = str(_body(error).get("message") or "")
    if int(error.status or 0) != 500 or "failed to create typed patch object" not in message:
        return None
    found = _UNDECLARED.search(message)
    return found.group(1) if found else "a field"


def _conflicts(body: dict[str, Any]) -> list[str]:
    """'<field> (managed by "<manager>")' for each FieldManagerConflict cause of a 409."""
    found = []
    for cause in (body.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "FieldManagerConflict":
            manager = re.search(r'conflict with "([^"]*)"', str(cause.get("message") or ""))
            owner = manager.group(1) if manager else "another field manager"
            found.append(f'{cause.get("field", "a field")} (managed by "{owner}")')
    return found


def api_error(what: str, error: Any, host: str) -> KubernetesApiError:
    """Translate an ApiException into our tree: the class its status says (errors.py), with a
    message holding the API's own reason."""
    body = _body(error)
    message = str(body.get("message") or error.reason or "").strip()
    status = int(error.status or 0)
    reason = str(body.get("reason") or "")
    field = _undeclared_field(error)
    if field:  # a 500 about the request's schema: waiting does not help
        return Invalid(
            f"cannot {what}: the installed KServe CRD does not declare {field}; upgrade KServe, "
            "or deploy without the option that needs it (e.g. --spec-style legacy)",
            status,
            reason,
        )
    conflicts = _conflicts(body)
    if status == 409 and conflicts:
        more = f" and {len(conflicts) - 2} more" if len(conflicts) > 2 else ""
        return FieldConflict(
            f"cannot {what}: {', '.join(conflicts[:2])}{more} changed by someone else; "
            "pass --force (FUSEML_FORCE=true) to take the field over, or change it back",
            status,
            reason,
        )
    if status == 403 and "admission webhook" in message:
        return Forbidden(f"cannot {what}: KServe refused it: {message}", status, reason)
    # RBAC answers a read in a namespace this identity has no rules in (as a missing one)
    # with 403: the step's identity cannot tell "missing" from "not mine".
    namespace = re.search(
        r'cannot (?:get|list|watch) resource .* in the namespace "([^"]+)"', message
    )
    if status == 403 and namespace:
        return Forbidden(
            f"cannot {what}: namespace {namespace.group(1)!r} does not exist or this identity "
            "cannot see it; create it, choose another (--namespace), or grant the step's "
            f"service account the rules in deploy/rbac.yaml there ({message})",
            status,
            reason,
        )
    if status == 403:
        return Forbidden(
            f"cannot {what}: permission denied ({message}); grant the step's service account "
            "the rules in deploy/rbac.yaml",
            status,
            reason,
        )
    if status == 401:
        return Forbidden(
            f"cannot {what}: the Kubernetes API at {host} rejected the credentials", status, reason
        )
    if status == 404 and "namespaces" in message and "not found" in message:
        return NotFound(
            f"cannot {what}: {message}; create the namespace or choose another", status, reason
        )
    if status in (400, 422):
        return Invalid(f"cannot {what}: the API server rejected it: {message}", status, reason)
    if status == 404:
        return NotFound(
            f"cannot {what}: {message or 'not found'}; is KServe installed on this cluster?",
            status,
            reason,
        )
    kind = kubernetes_error_class(status)
    return kind(
        f"cannot {what}: Kubernetes API answered {status} {message}".strip(), status, reason
    )
