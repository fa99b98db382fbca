"""A progress bar with counts for long CLI runs (an initial load of 100,000 contacts).

An engine Observer that redraws one terminal line. The whole is unknown while Salesforce is
still being read, so the bar shows what was sent against what was sent plus what is queued
now (the sync table's due rows): it fills as the backlog drains and steps back a little
each time another page of contacts is queued. Only used on a terminal (the CLI decides).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TextIO

from dialsync.destinations.base import ItemResult, Outcome
from dialsync.engine import Observer, RunReport
from dialsync.errors import DialsyncError

_DONE = {"create": "created", "update": "updated", "delete": "deleted"}
SHOWN = ("created", "updated", "deleted", "rejected", "retrying")


class ProgressBar(Observer):
    def __init__(
        self,
        stream: TextIO,
        backlog: Callable[[], int],
        *,
        would: bool = False,  # a plan: nothing is sent, say so
        width: int = 24,
        every: float = 0.2,  # redraws per second are bounded: a draw reads the backlog
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.backlog = backlog
        self.would = would
        self.width = width
        self.every = every
        self.clock = clock
        self.started = clock()
        self.pulled = 0
        self.done: Counter[str] = Counter()
        self._drawn_at: float | None = None
        self._length = 0
        # The engine's push threads report while the main thread pulls.
        self._lock = threading.RLock()

    def batch_pulled(self, report: RunReport, count: int) -> None:
        with self._lock:
            self.pulled += count
            self._draw()

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        with self._lock:
            for result in results:
                if result.outcome is Outcome.OK:
                    self.done[_DONE[op]] += 1
                elif result.outcome in (Outcome.REJECTED, Outcome.DUPLICATE):
                    self.done["rejected"] += 1
                elif result.outcome in (Outcome.TRANSIENT, Outcome.UNKNOWN):
                    self.done["retrying"] += 1
            self._draw()

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        with self._lock:
            self.done["retrying"] += count
            self._draw()

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        with self._lock:
            self._draw(force=True)
            self._write("\n")
            self._length = 0  # the finished line stays

    def line(self) -> str:
        sent = sum(self.done.values())
        total = sent + self.backlog()
        share = sent / total if total else 1.0
        filled = round(share * self.width)
        elapsed = max(self.clock() - self.started, 1e-9)
        verb = "would be " if self.would else ""
        counts = " · ".join(f"{verb}{name} {self.done[name]:,}" for name in SHOWN)
        return (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%}  "
            f"read {self.pulled:,} · {counts} · {sent / elapsed:,.0f}/s"
        )

    def _draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and self._drawn_at is not None and now - self._drawn_at < self.every:
            return
        self._drawn_at = now
        try:
            text = self.line()
        except Exception:  # the backlog read failed (a busy DB): skip this redraw, never the sync
            return
        self._write("\r" + text.ljust(self._length))
        self._length = len(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken terminal must not stop the sync

    def clear(self) -> None:
        """Wipe the bar so a log line is not glued to it; the next draw puts it back."""
        with self._lock:
            if self._length:
                self._write("\r" + " " * self._length + "\r")
                self._length = 0
                self._drawn_at = None


class _ClearingStream:
    """The log handler's stream while a bar is shown: clears the bar before each record."""

    def __init__(self, bar: ProgressBar, stream: TextIO) -> None:
        self.bar = bar
        self.stream = stream

    def write(self, text: str) -> int:
        self.bar.clear()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def terminal_progress(
    backlog: Callable[[], int], *, would: bool = False, stream: TextIO | None = None
) -> ProgressBar | None:
    """A bar on stderr when it is a terminal (never in pipes, files or CI logs), else None."""
    out = stream or sys.stderr
    if not out.isatty():
        return None
    bar = ProgressBar(out, backlog, would=would)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is out:
            handler.setStream(_ClearingStream(bar, out))
    return bar
