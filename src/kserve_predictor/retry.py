"""The one retry policy for every system the product talks to: Kubernetes, S3, FuseML and the
smoke test.

A transient failure (a dropped or refused connection, a timeout, 429, 5xx) is retried after an
exponentially growing delay with jitter, so that many clients hitting a restarting server do
not come back in lockstep; retrying stops when the time budget (``KSERVE_PREDICTOR_RETRY_
SECONDS``) or a caller's own deadline would be passed. Each attempt is told how long it may
take, so a server that accepts a request and then never answers cannot hold a deadline hostage.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP answers worth another try: throttling and server-side failures."""


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
    ) -> T:
        """Run ``attempt(timeouts)`` until it succeeds, fails permanently, or time is up.

        ``transient(error)`` says whether an exception is worth another try; the last error
        is re-raised unchanged for the caller to translate. ``deadline`` (time.monotonic())
        ends retrying earlier than the policy's own budget when the caller has promised one.
        """
        end = time.monotonic() + self.seconds
        if deadline is not None:
            end = min(end, deadline)
        failures = 0
        while True:
            try:
                return attempt(self.timeout(end))
            except Exception as e:
                failures += 1
                pause = self.delay(failures)
                out_of_attempts = bool(self.attempts) and failures >= self.attempts
                if not transient(e) or out_of_attempts or time.monotonic() + pause >= end:
                    raise
                log.debug("%s: %s, retrying in %.1f s", what, describe(e), pause)
            time.sleep(pause)


def describe(error: BaseException) -> str:
    """A short name for a failure, for debug logs."""
    status = getattr(error, "status", None)
    return f"{type(error).__name__} {status}" if status else type(error).__name__


DEFAULT = RetryPolicy()
