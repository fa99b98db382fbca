"""The plan's stand-ins: an observer that notes each decision, destinations that write nothing.

The plan runs the real engine on a copy of the state. ``DecisionRecorder`` is its observer: it
notes the verdict the store itself took for every contact (one decision, made once, by the
store; the engine reports it through ``Observer.decided``). ``DryRunDestination`` reads the real
list (open, scan) and answers every write with success; it carries the real destination's
capabilities, so the engine waits for a create's answer exactly as long as a sync would.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from dialsync.destinations.base import (
    Bounded,
    Destination,
    ItemResult,
    Outcome,
    TargetInfo,
    WriteItem,
)
from dialsync.destinations.capacity import Fill, ListCapacity
from dialsync.engine import Observer, RunReport
from dialsync.errors import DialsyncError
from dialsync.models import WAITS_FOR_ROOM, DialerRecord
from dialsync.rowstate.decide import Desired, Verdict

# (external id, verdict, reason code, reason message)
Decision = tuple[str, Verdict, str | None, str | None]


class DecisionRecorder(Observer):
    """Notes the verdict the store took for every contact of the plan's run, by list, and
    passes every hook on to the plan's own observer (a progress bar) when there is one."""

    def __init__(self, inner: Observer | None = None) -> None:
        self.inner = inner or Observer()
        # "name:target" -> the decisions taken for its contacts, in order
        self.decisions: dict[str, list[Decision]] = defaultdict(list)
        self._lock = threading.Lock()

    def decided(self, dest: str, decisions: Sequence[tuple[Desired, Verdict]]) -> None:
        with self._lock:
            self.decisions[dest].extend(
                (w.external_id, verdict, w.reason_code, w.reason_message)
                for w, verdict in decisions
            )
        self.inner.decided(dest, decisions)

    def run_started(self, report: RunReport) -> None:
        self.inner.run_started(report)

    def batch_pulled(self, report: RunReport, count: int) -> None:
        self.inner.batch_pulled(report, count)

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        self.inner.batch_sent(dest, op, results)

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        self.inner.batch_failed(dest, op, count, error)

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        self.inner.run_finished(report, seconds, status)


class DryRunDestination:
    """Reads the real list (open, scan); answers writes with success and keeps their ids."""

    def __init__(self, real: Destination) -> None:
        self.real = real
        self.name = real.name
        self.target = real.target
        # The real one's: how long a lost create may still land, the batch size, the upsert.
        self.capabilities = real.capabilities
        self.sent: dict[str, list[str]] = {"create": [], "update": [], "delete": []}
        self.orphans = 0
        self._lock = threading.Lock()  # the engine's push threads call in concurrently
        self.scanned = False
        self.info: TargetInfo | None = None
        self.held = 0  # creates a full list would not take
        self.capacity: ListCapacity | None = None  # a copy of the real list's count

    def render(self, record: DialerRecord) -> dict[str, Any]:
        return self.real.render(record)

    def open(self) -> TargetInfo:
        self.info = self.real.open()
        # The real adapter's count of the list as it opened: the plan holds what it would hold,
        # on a copy (the plan's writes never change the real adapter's count).
        fill = self.real.fill() if isinstance(self.real, Bounded) else None
        self.capacity = None
        if fill is not None:
            self.capacity = ListCapacity(fill.limit)
            self.capacity.opened(fill.held)
        return self.info

    def fill(self) -> Fill | None:
        return self.capacity.fill() if self.capacity else None

    def _ok(self, op: str, items: Sequence[WriteItem]) -> list[ItemResult]:
        out = []
        with self._lock:
            for item in items:
                self.sent[op].append(item.external_id)
                record_id = item.record_id or f"plan-{len(self.sent['create'])}"
                out.append(ItemResult(item.external_id, Outcome.OK, record_id))
        return out

    def create(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        granted = self.capacity.reserve(len(items)) if self.capacity else len(items)
        held = [
            ItemResult(
                item.external_id, Outcome.TRANSIENT, code=WAITS_FOR_ROOM, message="list full"
            )
            for item in items[granted:]
        ]
        with self._lock:
            self.held += len(held)
        return self._ok("create", items[:granted]) + held

    def update(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        return self._ok("update", items)

    def delete(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        if self.capacity:
            self.capacity.removed(len(items))
        return self._ok("delete", items)

    def delete_records(self, record_ids: Sequence[str]) -> list[ItemResult]:
        with self._lock:
            self.orphans += len(record_ids)
        return [ItemResult("", Outcome.OK, rid) for rid in record_ids]

    def scan(self) -> Iterator[tuple[str, str]]:
        self.scanned = True
        return self.real.scan()

    def close(self) -> None:
        self.real.close()
