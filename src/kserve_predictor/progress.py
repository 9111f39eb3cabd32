"""Progress of a long copy: files and bytes done, shown in place on a terminal.

The library reports through a ``Progress`` passed down by its caller; the default,
``NO_PROGRESS``, ignores every tick, so library users see nothing unless they ask. The CLI
passes a ``TerminalProgress`` only when stderr is a terminal and the output is not JSON: a
Tekton log or a pipe gets no carriage returns. What is shown names counts, never URLs, so it
cannot carry a credential.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, TextIO

SHOW_FILES = 50
"""A copy of at least this many files is shown from its start."""
SHOW_BYTES = 64 * 1024 * 1024
"""... and one of at least this many bytes."""
SHOW_AFTER_SECONDS = 1.0
"""A smaller copy is shown once it has taken this long (a slow store)."""
_REDRAW_SECONDS = 0.1  # at most ten redraws a second: ticks from 16 threads stay cheap


class Progress(Protocol):
    """Receives the ticks of one copy at a time; called from worker threads."""

    def start(self, what: str, files: int, total_bytes: int) -> None:
        """A copy of ``files`` files and ``total_bytes`` bytes begins."""
        ...

    def advance(self, nbytes: int) -> None:
        """One file of ``nbytes`` bytes is done."""
        ...

    def finish(self) -> None:
        """The copy ended (done or failed)."""
        ...


class _Silent:
    def start(self, what: str, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


NO_PROGRESS: Progress = _Silent()


class TerminalProgress:
    """One line on a terminal, redrawn in place: ``copying: 12/60 files, 3.1/9.8 MiB, 2.0 MiB/s``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._reset("", 0, 0)

    def _reset(self, what: str, files: int, total_bytes: int) -> None:
        self._what, self._files, self._bytes = what, files, total_bytes
        self._files_done = self._bytes_done = 0
        self._started = self._drawn_at = time.monotonic()
        self._shown = False

    def start(self, what: str, files: int, total_bytes: int) -> None:
        with self._lock:
            self._reset(what, files, total_bytes)
            if files >= SHOW_FILES or total_bytes >= SHOW_BYTES:
                self._draw(time.monotonic())

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._files_done += 1
            self._bytes_done += nbytes
            now = time.monotonic()
            due = self._shown or now - self._started >= SHOW_AFTER_SECONDS
            if due and (now - self._drawn_at >= _REDRAW_SECONDS or self._complete):
                self._draw(now)

    def finish(self) -> None:
        with self._lock:
            if self._shown:
                self._draw(time.monotonic())
                self._stream.write("\n")
                self._stream.flush()
            self._shown = False

    @property
    def _complete(self) -> bool:
        return self._files_done >= self._files

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        line = (
            f"{self._what}: {self._files_done}/{self._files} files, "
            f"{_size(self._bytes_done)}/{_size(self._bytes)}, {_size(self._bytes_done / elapsed)}/s"
        )
        # \r back to the line's start, \x1b[K clears what a longer earlier line left.
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()
        self._shown, self._drawn_at = True, now


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # unreachable; for the type checker


def for_terminal(stream: TextIO, wanted: bool = True) -> Progress:
    """A TerminalProgress on ``stream`` if it is a terminal and progress is ``wanted``; else
    NO_PROGRESS."""
    isatty = getattr(stream, "isatty", None)
    if wanted and isatty is not None and isatty():
        return TerminalProgress(stream)
    return NO_PROGRESS
