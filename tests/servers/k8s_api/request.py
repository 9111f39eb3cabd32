"""A request as the API sees it once the HTTP layer has read it, and what it answers."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from .errors import ApiError, _cause
from .resources import Obj, ResourceType
from .storage import _Key, _key

# --------------------------------------------------------------------------------------------
# Requests


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_gone: Callable[[], bool] = lambda: False
    # (API group, resource, verb) for each authorization check, once routed
    access: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json").split(";")[0].strip().lower()

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it, for assertions (``server.requests``)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    content_type: str | None
    access: tuple[tuple[str, str, str], ...] = ()
    """(API group, resource, verb) of each RBAC check the request needed (none for
    discovery; an apply that creates is also authorized as create)."""
    user_agent: str = ""


@dataclass
class Response:
    status: int
    body: Obj
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Stream:
    """A watch: events are written as chunked JSON lines as the iterator yields them."""

    events: Generator[Obj, None, None]


@dataclass(frozen=True)
class _Target:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def key(self) -> _Key:
        return _key(self.rtype, self.namespace, self.name or "")


_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def _check_dry_run(request: Request) -> None:
    """Like the real server: ``dryRun`` may only be "All" (ValidateDryRun in apimachinery)."""
    value = request.query.get("dryRun")
    if value is None or value == "All":
        return
    kind = _OPTIONS_KIND.get(request.method, "DeleteOptions")
    message = f'Unsupported value: []string{{"{value}"}}: supported values: "All"'
    raise ApiError(
        422,
        f'{kind}.meta.k8s.io "" is invalid: dryRun: {message}',
        details={
            "group": "meta.k8s.io",
            "kind": kind,
            "causes": [_cause("dryRun", message, "FieldValueNotSupported")],
        },
    )


def _manager_from(headers: dict[str, str]) -> str:
    # Like the real server: the User-Agent up to its first "/" (the Python client sends
    # "OpenAPI-Generator/<version>/python").
    agent = headers.get("user-agent", "")
    return agent.split("/")[0][:128] or "unknown"
