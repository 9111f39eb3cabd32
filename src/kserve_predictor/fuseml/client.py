"""A small client for the FuseML core REST API (DESIGN.md §2): register, look up, list and
delete the Applications the step publishes.

Every failure is raised as ``FuseMLError`` with a one-line message that names the server (never
its credentials), the HTTP status and the server's own message when there is one, and what to do.
Transient failures (connection errors, dropped connections, timeouts, 429 and 5xx) are retried
under the product's one retry policy (``retry.py``).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests
from urllib3.exceptions import MaxRetryError

from kserve_predictor.errors import FuseMLError, UsageError
from kserve_predictor.retry import TRANSIENT_STATUSES, Contact, RetryPolicy, unreached
from kserve_predictor.settings.groups import DEFAULT_FUSEML_SOURCE as DEFAULT_SOURCE
from kserve_predictor.settings.groups import DEFAULT_FUSEML_URL, FuseMLSettings

_log = logging.getLogger("kserve_predictor.fuseml")  # stable log channel, not the path

DEFAULT_RETRY = RetryPolicy(seconds=30.0, read_timeout=10.0)
_CHECK_URL = "check FUSEML_SERVER_URL and that fuseml-core is running"


@dataclass(frozen=True, kw_only=True)
class Application:
    """A FuseML Application: what the step registers for the service it deployed."""

    name: str
    url: str
    workflow: str
    k8s_namespace: str
    type: str = "predictor"
    description: str = ""
    # The Kubernetes objects FuseML deletes itself when the Application is deleted.
    k8s_resources: Sequence[Mapping[str, str]] = ()

    def registered_in(self, listed: Sequence[Mapping[str, Any]]) -> bool:
        """Is this Application, as it would be registered, among ``listed`` already?"""
        body = self.as_body()
        return any(all(a.get(k) == v for k, v in body.items()) for a in listed)

    def as_body(self) -> dict[str, Any]:
        """The JSON body of ``POST /applications``."""
        return {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "url": self.url,
            "workflow": self.workflow,
            "k8s_namespace": self.k8s_namespace,
            "k8s_resources": [{"name": r["name"], "kind": r["kind"]} for r in self.k8s_resources],
        }


class _RetryableAnswer(Exception):
    """A 5xx/429 answer, raised so the retry policy tries again; the last one is handed back."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _transient(error: Exception) -> bool:
    # POST /applications is an upsert, so every method is safe to repeat.
    return isinstance(error, (_RetryableAnswer, requests.ConnectionError, requests.Timeout))


def _public_url(base_url: str) -> str:
    """The URL without any user:password part, fit for messages and logs."""
    parts = urlsplit(base_url)
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc).geturl().rstrip("/")


def _root_cause(error: BaseException) -> str:
    """The innermost cause of a requests/urllib3 exception, as a short phrase.

    requests and urllib3 nest the real cause in exception arguments (``ConnectionError(
    MaxRetryError(reason=ProtocolError("Connection aborted.", RemoteDisconnected(...))))``) as
    well as in ``__cause__``; follow both down to the socket-level error.
    """
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        nested = [a for a in error.args if isinstance(a, BaseException)]
        inner = getattr(error, "reason", None) if isinstance(error, MaxRetryError) else None
        inner = inner or (nested[0] if nested else None) or error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _server_message(response: requests.Response) -> str:
    """The error message in a FuseML answer: goa's ``message``, or ``error``/``detail``, or the
    start of a non-JSON body; "" when there is none."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str) and body[key].strip():
                body = body[key]
                break
    if not isinstance(body, str):
        return ""
    return " ".join(body.split())[:300]  # one line, bounded


def connect(settings: FuseMLSettings | None) -> FuseMLClient | None:
    """The client of the FuseML server ``settings`` names (None: no server, no client): the one
    place a client is built from settings, so every command gets the same TLS and retries."""
    if settings is None:
        return None
    return FuseMLClient(
        settings.url,
        verify_tls=settings.verify_tls,
        retry=RetryPolicy(seconds=settings.retry_seconds),
        source=settings.source,
    )


class FuseMLClient:
    """Talks to the FuseML core REST API at ``base_url`` (usually ``FUSEML_SERVER_URL``).

    ``retry`` is the product's one retry policy: its timeouts bound each attempt, its time
    budget (and attempts, if set) bounds the retries of transient failures (connection errors,
    timeouts, 429, 5xx).
    """

    def __init__(
        self,
        base_url: str,
        *,
        verify_tls: bool = True,
        retry: RetryPolicy = DEFAULT_RETRY,
        source: str = "FUSEML_SERVER_URL",
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"FUSEML_SERVER_URL={_public_url(base_url)!r} is not an http(s) URL; "
                f"set it to the FuseML core server, e.g. {DEFAULT_FUSEML_URL}"
            )
        self.url = _public_url(base_url.strip())
        self.retry = retry
        self.source = source
        """Where the URL came from (FUSEML_SERVER_URL, --fuseml-url, the default), for messages."""
        self.contact = Contact()
        """Whether the server has answered: until then a refused connection is not retried."""
        self.session = requests.Session()
        self.session.verify = verify_tls
        # Credentials go to Basic auth so the URL used everywhere, messages included, has none.
        if parts.username is not None:
            self.session.auth = (unquote(parts.username), unquote(parts.password or ""))

    # ---- API

    def register_serving(
        self, app: Application, what: str, listed: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Register ``app`` unless ``listed`` (the preflight's listing) holds it as it is. The
        ``what`` (service, server) at ``app.url`` serves even if this fails: the error says so."""
        if app.registered_in(listed):
            _log.info("FuseML application %s is registered as it is", app.name)
            return
        try:
            self.register(app)
        except FuseMLError as e:
            raise FuseMLError(f"{e} (the {what} itself is up at {app.url})") from e

    def register(self, app: Application) -> dict[str, Any]:
        """Register or replace ``app``; returns the object the server stored."""
        response = self._request("POST", "/applications", json=app.as_body())
        if response.status_code == 400:
            raise FuseMLError(
                f"the FuseML server at {self.url} rejected the application {app.name!r}: "
                f"{_server_message(response) or 'no reason given'} (HTTP 400)"
            )
        self._expect(response, "POST", "/applications", 200, 201)
        stored = self._json(response, "POST", "/applications")
        if not isinstance(stored, dict):
            raise self._bad_body("POST", "/applications", "an object")
        _log.info("registered FuseML application %s at %s", app.name, self.url)
        return stored

    def get(self, name: str) -> dict[str, Any] | None:
        """The Application called ``name``, or None when there is none."""
        path = f"/applications/{quote(name, safe='')}"
        response = self._request("GET", path)
        if response.status_code == 404:
            return None
        self._expect(response, "GET", path, 200)
        app = self._json(response, "GET", path)
        if not isinstance(app, dict):
            raise self._bad_body("GET", path, "an object")
        return app

    def list(
        self, type: str | None = None, workflow: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The Applications, optionally only those of one type and/or workflow."""
        params = {k: v for k, v in (("type", type), ("workflow", workflow)) if v is not None}
        response = self._request("GET", "/applications", params=params)
        self._expect(response, "GET", "/applications", 200)
        apps = self._json(response, "GET", "/applications")
        if not isinstance(apps, builtins.list) or not all(isinstance(a, dict) for a in apps):
            raise self._bad_body("GET", "/applications", "a list of objects")
        return apps

    def delete(self, name: str) -> bool:
        """Delete the Application ``name``; False when it was already gone."""
        path = f"/applications/{quote(name, safe='')}"
        response = self._request("DELETE", path)
        if response.status_code == 404:
            return False
        self._expect(response, "DELETE", path, 200, 202, 204)
        _log.info("deleted FuseML application %s at %s", name, self.url)
        return True

    def ping(self) -> builtins.list[dict[str, Any]]:
        """A cheap preflight check that the server answers the Applications API; returns the
        predictor Applications it listed (empty when the answer is not a list of objects), so
        that a re-run can see that its registration is already there."""
        path = "/applications"
        response = self._request("GET", path, params={"type": "predictor"})
        if response.status_code != 200:
            raise FuseMLError(
                f"the FuseML server at {self.url} is unusable: {self._status_text(response)} "
                f"to GET {path}; {_CHECK_URL}"
            )
        try:
            listed = response.json()
        except ValueError:
            return []
        return (
            [a for a in listed if isinstance(a, dict)] if isinstance(listed, builtins.list) else []
        )

    def close(self) -> None:
        self.session.close()

    # ---- plumbing

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call, retries included; requests' exceptions become FuseMLError here."""
        _log.debug("FuseML %s %s%s", method, self.url, path)

        def attempt(timeout: tuple[float, float]) -> requests.Response:
            # verify per request: a session's verify=False alone loses to REQUESTS_CA_BUNDLE
            # and CURL_CA_BUNDLE (requests' merge_environment_settings).
            response = self.session.request(
                method, self.url + path, timeout=timeout, allow_redirects=False,
                verify=self.session.verify, **kwargs,
            )  # fmt: skip
            if response.status_code in TRANSIENT_STATUSES:
                raise _RetryableAnswer(response)
            return response

        try:
            return self.retry.call(
                f"FuseML {method} {path}", attempt, _transient, contact=self.contact
            )
        except _RetryableAnswer as e:  # the last answer, so the error can quote its message
            return e.response
        except requests.ConnectionError as e:
            reason = unreached(e)
            if reason:
                skip = (
                    "; outside FuseML, set FUSEML_SERVER_URL to an empty value to skip the "
                    "registration"
                    if self.source == DEFAULT_SOURCE
                    else ""
                )
                raise FuseMLError(
                    f"nothing answers at the FuseML server at {self.url} (from {self.source}): "
                    f"{reason}, for {method} {path}; {_CHECK_URL}{skip}"
                ) from e
            # ConnectionError covers connect timeouts; read timeouts are caught below.
            if not isinstance(e, requests.ReadTimeout):
                raise FuseMLError(
                    f"the FuseML server at {self.url} is unreachable ({_root_cause(e)}) "
                    f"for {method} {path}; {_CHECK_URL}"
                ) from e
            raise self._timed_out(method, path) from e
        except requests.Timeout as e:
            raise self._timed_out(method, path) from e
        except requests.RequestException as e:
            raise FuseMLError(
                f"the request {method} {path} to the FuseML server at {self.url} failed "
                f"({_root_cause(e)}); {_CHECK_URL}"
            ) from e

    def _timed_out(self, method: str, path: str) -> FuseMLError:
        return FuseMLError(
            f"the FuseML server at {self.url} did not answer {method} {path} within "
            f"{self.retry.read_timeout:g}s; check that fuseml-core is healthy, then retry"
        )

    @staticmethod
    def _status_text(response: requests.Response) -> str:
        message = _server_message(response)
        return f"HTTP {response.status_code}" + (f" ({message})" if message else "")

    def _expect(self, response: requests.Response, method: str, path: str, *ok: int) -> None:
        if response.status_code in ok:
            return
        status = response.status_code
        if status >= 500:
            advice = "the server failed; check the fuseml-core logs, then retry"
        elif status in (401, 403):
            advice = "the server refused access; check the credentials in FUSEML_SERVER_URL"
        else:
            advice = "check FUSEML_SERVER_URL points at a FuseML core server"
        raise FuseMLError(
            f"the FuseML server at {self.url} answered {self._status_text(response)} "
            f"to {method} {path}; {advice}"
        )

    def _json(self, response: requests.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError as e:
            raise self._bad_body(method, path, "JSON") from e

    def _bad_body(self, method: str, path: str, expected: str) -> FuseMLError:
        return FuseMLError(
            f"the FuseML server at {self.url} answered {method} {path} with a body that is not "
            f"{expected}; check FUSEML_SERVER_URL points at a FuseML core server"
        )
