"""Keep secret values out of everything the tool prints or logs."""

from __future__ import annotations

import logging
import re

MASK = "***"
# Credentials embedded in URLs (https://user:password@host) are masked wherever they appear.
_URL_CREDENTIALS = re.compile(r"(?<=://)([^/\s:@]+):([^/\s@]+)@")


class Redactor:
    """Replaces known secret values, and URL user:password pairs, with a mask."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: set[str] = set()
        for secret in secrets or []:
            self.add(secret)

    def add(self, secret: str) -> None:
        # Very short values would mask ordinary words; credentials are never that short.
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return _URL_CREDENTIALS.sub(rf"\1:{MASK}@", text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose whole output (message, arguments, tracebacks) is redacted."""

    def __init__(self, redactor: Redactor, fmt: str) -> None:
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))
