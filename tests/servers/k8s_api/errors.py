"""Failures as ``meta/v1 Status`` bodies, like k8s.io/apimachinery/pkg/api/errors builds them."""

from __future__ import annotations

from collections.abc import Iterable

from .resources import Obj, ResourceType

# --------------------------------------------------------------------------------------------
# Errors: every failure leaves as a ``Status`` body, like the real API server's.

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """A ``meta/v1 Status`` failure body."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    """A request failure, carrying the Status body the server answers with."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: Obj | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status_body(code, reason or _REASONS.get(code, "Unknown"), message, details)
        self.headers = list(headers)


def _cause(field_path: str, message: str, reason: str = "FieldValueInvalid") -> Obj:
    return {"reason": reason, "message": message, "field": field_path}


def _page_not_found() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", details={})


def _not_found(rt: ResourceType, name: str | None) -> ApiError:
    return ApiError(404, f'{rt.resource_ref} "{name}" not found', details=rt.details(name))


def _invalid(rt: ResourceType, name: str, causes: list[Obj]) -> ApiError:
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = {"name": name, "kind": rt.kind, "causes": causes}
    if rt.group:
        details["group"] = rt.group
    return ApiError(422, f'{rt.kind_ref} "{name}" is invalid: {summary}', details=details)
