"""Progress you can trust on long work (an initial load of 100,000 contacts).

Engine observers, fed by the engine's hooks:

- ``Progress`` counts what a run read and sent, and says how far it is. When the run reads the
  whole org (an initial load, `sync --full`) the contacts are counted first (one
  ``SELECT COUNT()``): the share is then the contacts handled (read, and sent or needing no
  call) of that total. Otherwise the whole is unknown and the share is what was sent against
  what was sent plus what is queued now. Either way the share never goes down: a new page of
  contacts queued holds the bar, it never steps it back. Rate and ETA follow from the share.
- ``ProgressBar`` redraws one terminal line (the CLI, on a TTY only).
- ``ProgressLog`` logs "run started", a progress line every N seconds, and "run finished",
  with fields for the JSON log (the service, `dialsync run`, a sync without a TTY).
- ``Observers`` hands each hook to several observers (progress, log, metrics).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from dialsync.destinations.base import ItemResult, Outcome
from dialsync.engine import Observer, RunReport
from dialsync.errors import DialsyncError

log = logging.getLogger("dialsync.progress")
_DONE = {"create": "created", "update": "updated", "delete": "deleted"}
SHOWN = ("created", "updated", "deleted", "rejected", "retrying")
Total = Callable[[RunReport], "int | None"]


class Observers(Observer):
    """Several observers as one; one failing observer never reaches the engine or the others."""

    def __init__(self, *observers: Observer | None) -> None:
        self.observers: list[Observer] = [o for o in observers if o is not None]

    def add(self, observer: Observer | None) -> Observers:
        if observer is not None:
            self.observers.append(observer)
        return self

    def _each(self, name: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, name)(*args)
            except Exception:
                log.exception("observer %s failed", type(observer).__name__)

    def run_started(self, report: RunReport) -> None:
        self._each("run_started", report)

    def batch_pulled(self, report: RunReport, count: int) -> None:
        self._each("batch_pulled", report, count)

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        self._each("batch_sent", dest, op, results)

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        self._each("batch_failed", dest, op, count, error)

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        self._each("run_finished", report, seconds, status)


class Progress(Observer):
    """The counts of one run and how far it is; thread-safe (push threads report too)."""

    def __init__(
        self,
        backlog: Callable[[], int],
        *,
        total: Total | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backlog = backlog
        self.count_total = total
        self.clock = clock
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.started = self.clock()
        self.pulled = 0
        self.total: int | None = None
        self.done: Counter[str] = Counter()
        self._share = 0.0

    def run_started(self, report: RunReport) -> None:
        with self._lock:
            self._reset()
        total = None
        if self.count_total is not None:
            try:
                total = self.count_total(report)
            except Exception as exc:  # no total: the bar falls back to the backlog (the run's
                # own queries report an outage, once)
                log.info("could not count the contacts to read: %s", exc)
        with self._lock:
            self.total = total

    def batch_pulled(self, report: RunReport, count: int) -> None:
        with self._lock:
            self.pulled += count

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        with self._lock:
            for result in results:
                if result.outcome is Outcome.OK:
                    self.done[_DONE[op]] += 1
                elif result.outcome in (Outcome.REJECTED, Outcome.DUPLICATE):
                    self.done["rejected"] += 1
                elif result.outcome in (Outcome.TRANSIENT, Outcome.UNKNOWN):
                    self.done["retrying"] += 1

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        with self._lock:
            self.done["retrying"] += count

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        if status != "failed":
            with self._lock:
                self._share = 1.0

    def share(self) -> float:
        """How far the run is, 0..1; never less than it was (reads the backlog)."""
        backlog = self.backlog()
        with self._lock:
            sent = sum(self.done.values())
            if self.total:
                now = min(1.0, max(0, self.pulled - backlog) / self.total)
            else:
                now = sent / (sent + backlog) if sent + backlog else 0.0
            self._share = max(self._share, now)
            return self._share

    def elapsed(self) -> float:
        return max(self.clock() - self.started, 1e-9)

    def eta(self, share: float) -> float | None:
        """Seconds left at the pace so far; None before there is a pace."""
        if share <= 0.0:
            return None
        return self.elapsed() * (1.0 - share) / share

    def rate(self) -> float:
        """Contacts handled per second (an initial load), else records sent per second."""
        with self._lock:
            work = self._share * self.total if self.total else sum(self.done.values())
        return work / self.elapsed()

    def fields(self, share: float) -> dict[str, Any]:
        eta = self.eta(share)
        with self._lock:
            return {
                "read": self.pulled,
                "total": self.total,
                "share": round(share, 4),
                "counts": {name: self.done[name] for name in SHOWN},
                "rate": round(self.rate(), 1),
                "eta_seconds": None if eta is None else round(eta, 1),
            }


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressBar(Progress):
    def __init__(
        self,
        stream: TextIO,
        backlog: Callable[[], int],
        *,
        total: Total | None = None,
        would: bool = False,  # a plan: nothing is sent, say so
        width: int = 24,
        every: float = 0.2,  # redraws per second are bounded: a draw reads the backlog
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(backlog, total=total, clock=clock)
        self.stream = stream
        self.would = would
        self.width = width
        self.every = every
        self._drawn_at: float | None = None
        self._length = 0

    def run_started(self, report: RunReport) -> None:
        super().run_started(report)
        with self._lock:
            self._draw(force=True)

    def batch_pulled(self, report: RunReport, count: int) -> None:
        with self._lock:
            super().batch_pulled(report, count)
            self._draw()

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        with self._lock:
            super().batch_sent(dest, op, results)
            self._draw()

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        with self._lock:
            super().batch_failed(dest, op, count, error)
            self._draw()

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        with self._lock:
            super().run_finished(report, seconds, status)
            self._draw(force=True)
            self._write("\n")
            self._length = 0  # the finished line stays

    def line(self) -> str:
        share = self.share()
        filled = round(share * self.width)
        verb = "would be " if self.would else ""
        counts = " · ".join(f"{verb}{name} {self.done[name]:,}" for name in SHOWN)
        read = f"read {self.pulled:,}" + (f" of {self.total:,}" if self.total else "")
        unit = " contacts/s" if self.total else " records/s"
        eta = "done" if share >= 1.0 else f"ETA {duration(self.eta(share))}"
        return (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%}  "
            f"{read} · {counts} · {self.rate():,.0f}{unit} · {eta}"
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


class ProgressLog(Progress):
    """Log lines with fields: run started, progress every ``every`` seconds (None: never),
    run finished. For the service, `dialsync run`, and a sync whose stderr is no terminal."""

    def __init__(
        self,
        backlog: Callable[[], int],
        *,
        total: Total | None = None,
        every: float | None = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(backlog, total=total, clock=clock)
        self.every = every
        self._logged_at = 0.0
        self._report: RunReport | None = None

    def run_started(self, report: RunReport) -> None:
        super().run_started(report)
        self._report = report
        self._logged_at = self.clock()
        of = f": {self.total:,} contacts to read" if self.total is not None else ""
        log.info(
            "%s started%s",
            _name(report),
            of,
            extra={"run_id": report.run_id, "kind": report.kind, "total": self.total},
        )

    def batch_pulled(self, report: RunReport, count: int) -> None:
        super().batch_pulled(report, count)
        self._maybe_log()

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        super().batch_sent(dest, op, results)
        self._maybe_log()

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        super().batch_failed(dest, op, count, error)
        self._maybe_log()

    def _maybe_log(self) -> None:
        with self._lock:
            now = self.clock()
            if self.every is None or now - self._logged_at < self.every:
                return
            self._logged_at = now
        try:
            share = self.share()
        except Exception:  # the backlog read failed: skip this line, never the run
            return
        fields = self.fields(share)
        report = self._report
        counts = ", ".join(f"{k} {v:,}" for k, v in fields["counts"].items())
        of = f" of {self.total:,}" if self.total else ""
        log.info(
            "%s progress %.0f%%: read %s%s, %s, %s/s, ETA %s",
            _name(report) if report else "run",
            share * 100,
            f"{self.pulled:,}",
            of,
            counts,
            f"{fields['rate']:,.0f}",
            duration(fields["eta_seconds"]),
            extra={
                "run_id": report.run_id if report else None,
                "kind": report.kind if report else None,
                **fields,
            },
        )

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        super().run_finished(report, seconds, status)
        counts = report.as_dict()
        failed = dict(report.failed)
        # A failed run's error is logged once, by whoever handles it (task, CLI, `run`).
        log.log(
            logging.WARNING if status == "partial" else logging.INFO,
            "%s %s in %.1fs: %s%s",
            _name(report),
            "finished" if status == "ok" else status,
            seconds,
            ", ".join(f"{k} {v}" for k, v in counts.items()),
            "".join(f"; {name} failed: {why}" for name, why in failed.items()),
            extra={
                "run_id": report.run_id,
                "kind": report.kind,
                "status": status,
                "seconds": round(seconds, 3),
                "counts": counts,
                **({"failed": failed} if failed else {}),
            },
        )


def _name(report: RunReport) -> str:
    """ "run 12 (sync)"; a plan records no run: "plan"."""
    return f"run {report.run_id} ({report.kind})" if report.run_id is not None else report.kind


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
    backlog: Callable[[], int],
    *,
    total: Total | None = None,
    would: bool = False,
    stream: TextIO | None = None,
) -> ProgressBar | None:
    """A bar on stderr when it is a terminal (never in pipes, files or CI logs), else None."""
    out = stream or sys.stderr
    if not out.isatty():
        return None
    bar = ProgressBar(out, backlog, total=total, would=would)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is out:
            handler.setStream(_ClearingStream(bar, out))
    return bar
