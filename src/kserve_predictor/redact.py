"""Keep secret values out of everything the tool prints or logs."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

MASK = "***"
# Credentials embedded in URLs (https://user:password@host) are masked wherever they appear.
_URL_CREDENTIALS = re.compile(r"(?<=://)([^/\s:@]+):([^/\s@]+)@")
# Mapping keys whose string values are credentials (Secret data, settings fields).
_SECRET_KEY = re.compile(r"secret|password|token|access_key", re.IGNORECASE)


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

    def without(self, values: list[str]) -> Redactor:
        """A redactor masking all this one does but ``values`` (shown on explicit request)."""
        kept = Redactor()
        kept._secrets = self._secrets - set(values)
        return kept

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


def mask_url_credentials(text: str) -> str:
    return _URL_CREDENTIALS.sub(rf"\1:{MASK}@", text)


def masked(value: Any) -> Any:
    """A copy safe to show: Secret data, secret-named entries and URL passwords masked."""
    if isinstance(value, dict):
        is_secret = value.get("kind") == "Secret"
        return {k: _masked_entry(str(k), v, is_secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(masked(v) for v in value)
    if isinstance(value, str):
        return mask_url_credentials(value)
    return value


def _masked_entry(key: str, value: Any, in_secret: bool) -> Any:
    if in_secret and key in ("data", "stringData") and isinstance(value, dict):
        return dict.fromkeys(value, MASK)
    if isinstance(value, str) and _SECRET_KEY.search(key):
        return MASK
    return masked(value)


def masked_repr(obj: Any) -> str:
    """repr() of a dataclass with every secret masked, for settings and results that a
    traceback, a debugger or a log line could show."""
    fields = ", ".join(
        f"{f.name}={masked(getattr(obj, f.name))!r}" for f in dataclasses.fields(obj) if f.repr
    )
    return mask_url_credentials(f"{type(obj).__name__}({fields})")
