"""The one retry policy for every system the product talks to: Kubernetes, S3, FuseML and the
smoke test.

A transient failure (a dropped or refused connection, a timeout, 429, 5xx) is retried after an
exponentially growing delay with jitter, so that many clients hitting a restarting server do
not come back in lockstep; retrying stops when the time budget (``KSERVE_PREDICTOR_RETRY_
SECONDS``) or a caller's own deadline would be passed. Each attempt is told how long it may
take, so a server that accepts a request and then never answers cannot hold a deadline hostage.

The budget is for systems that answered once and then failed. Until a system has answered
(its client's ``Contact``), a refused connection or a host name that does not resolve is a
wrong address, not an outage: it fails at once, for the caller to name the address and where
it came from.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP answers worth another try: throttling and server-side failures."""


class Contact:
    """Whether one client's system has answered yet in this run (any answer: an error
    status, a dropped connection after it was accepted, or success)."""

    def __init__(self) -> None:
        self.answered = False


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry; one instance is shared by every client of a run."""

    seconds: float = 60.0
    """Total time for retries of one operation (KSERVE_PREDICTOR_RETRY_SECONDS)."""
    first_delay: float = 0.5
    """The delay after the first failure; it doubles after each one, up to ``max_delay``."""
    max_delay: float = 8.0
    connect_timeout: float = 10.0
    """Seconds to open a connection."""
    read_timeout: float = 60.0
    """Seconds to wait for an answer (or the next bytes of one) before the attempt fails."""
    attempts: int = 0
    """At most this many attempts (the first included); 0: as many as the time allows."""

    def delay(self, failures: int) -> float:
        """The pause after ``failures`` consecutive failures: "equal jitter" (half fixed, half
        random), so that it grows like the backoff yet never repeats in lockstep."""
        ceiling = min(self.max_delay, self.first_delay * 2 ** max(0, failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def timeout(self, deadline: float | None = None) -> tuple[float, float]:
        """(connect, read) timeouts for one attempt, cut to what is left before ``deadline``."""
        if deadline is None:
            return self.connect_timeout, self.read_timeout
        left = max(0.5, deadline - time.monotonic())
        return min(self.connect_timeout, left), min(self.read_timeout, left)

    def call(
        self,
        what: str,
        attempt: Callable[[tuple[float, float]], T],
        transient: Callable[[Exception], bool],
        deadline: float | None = None,
        contact: Contact | None = None,
    ) -> T:
        """Run ``attempt(timeouts)`` until it succeeds, fails permanently, or time is up.

        ``transient(error)`` says whether an exception is worth another try; the last error
        is re-raised unchanged for the caller to translate. ``deadline`` (time.monotonic())
        ends retrying earlier than the policy's own budget when the caller has promised one.
        With ``contact``, a connection that could not be opened (``unreached``) to a system
        that has not answered yet is not retried.
        """
        end = time.monotonic() + self.seconds
        if deadline is not None:
            end = min(end, deadline)
        failures = 0
        while True:
            try:
                result = attempt(self.timeout(end))
            except Exception as e:
                failures += 1
                pause = self.delay(failures)
                out_of_attempts = bool(self.attempts) and failures >= self.attempts
                first_contact = contact is not None and not contact.answered
                if first_contact and unreached(e):
                    raise
                if contact is not None and _reached(e):
                    contact.answered = True
                if (
                    not transient(e)
                    or certificate_refused(e)
                    or out_of_attempts
                    or time.monotonic() + pause >= end
                ):
                    raise
                log.debug("%s: %s, retrying in %.1f s", what, describe(e), pause)
            else:
                if contact is not None:
                    contact.answered = True
                return result
            time.sleep(pause)


def describe(error: BaseException) -> str:
    """A short name for a failure, for debug logs."""
    status = getattr(error, "status", None)
    return f"{type(error).__name__} {status}" if status else type(error).__name__


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it wraps: its cause and context, urllib3's ``reason``, botocore's
    ``error`` keyword and exceptions among its arguments (requests nests them there)."""
    found: list[BaseException] = []
    todo: list[Any] = [error]
    while todo and len(found) < 32:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or any(current is f for f in found):
            continue
        found.append(current)
        kwargs = getattr(current, "kwargs", None)
        todo += [
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            kwargs.get("error") if isinstance(kwargs, dict) else None,
            *current.args,
        ]
    return found


def unreached(error: BaseException) -> str:
    """Why no connection could be opened at all: "connection refused", "host name not
    resolved", or the socket error; "" when the error is something else (a timeout
    included: a slow network is worth the retries)."""
    import socket

    from urllib3.exceptions import NameResolutionError, NewConnectionError

    causes = _causes(error)
    if any(isinstance(c, (socket.gaierror, NameResolutionError)) for c in causes):
        return "host name not resolved"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    for cause in causes:
        if isinstance(cause, NewConnectionError):
            inner = next((c for c in causes if isinstance(c, OSError) and c.strerror), None)
            return (inner.strerror if inner is not None else "") or "no connection"
    return ""


def certificate_refused(error: BaseException) -> bool:
    """The server's TLS certificate failed verification: the same on every try, so it is said
    at once instead of after the retries (a handshake cut by the network stays retryable)."""
    import ssl

    return any(isinstance(c, ssl.SSLCertVerificationError) for c in _causes(error))


def _reached(error: BaseException) -> bool:
    """Did the failed attempt reach the server (it accepted the connection)?"""
    from urllib3.exceptions import ConnectTimeoutError

    if unreached(error):
        return False
    return not any(isinstance(c, ConnectTimeoutError) for c in _causes(error))


DEFAULT = RetryPolicy()
