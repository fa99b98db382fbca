"""The plan's stand-ins: a store that notes each decision, destinations that write nothing.

``RecordingStore`` wraps any ``SyncStore`` (the plan's copy of the state) and notes the verdict
the store itself took for every contact: one decision, made once, by the store.
``DryRunDestination`` reads the real list (open, scan) and answers every write with success;
it carries the real destination's capabilities, so the engine waits for a create's answer
exactly as long as a sync would.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from dialsync.destinations.base import Destination, ItemResult, Outcome, TargetInfo, WriteItem
from dialsync.destinations.capacity import HELD_CODE, ListCapacity
from dialsync.models import DialerRecord
from dialsync.rowstate.decide import Desired, RowState, Verdict
from dialsync.rowstate.transitions import Change
from dialsync.store.protocol import (
    Cursor,
    CursorValue,
    Fingerprint,
    RowInfo,
    SyncStore,
    TargetStore,
    WorkRow,
)

# (external id, verdict, reason code, reason message)
Decision = tuple[str, Verdict, str | None, str | None]


class RecordingTarget:
    """One list of the plan's store; ``apply`` notes each contact's verdict."""

    def __init__(self, inner: TargetStore, decisions: list[Decision]) -> None:
        self.inner = inner
        self.decisions = decisions

    @property
    def destination(self) -> str:
        return self.inner.destination

    @property
    def list_id(self) -> str:
        return self.inner.list_id

    def apply(
        self,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> Counter[Verdict]:
        return Counter(self.apply_each(wants, run_id, dry_run=dry_run, mark_seen=mark_seen))

    def apply_each(
        self,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> list[Verdict]:
        verdicts = self.inner.apply_each(wants, run_id, dry_run=dry_run, mark_seen=mark_seen)
        self.decisions.extend(
            (w.external_id, verdict, w.reason_code, w.reason_message)
            for w, verdict in zip(wants, verdicts, strict=True)
        )
        return verdicts

    # -- the rest as the store answers it -----------------------------------------------------
    def mark_seen(self, external_ids: Sequence[str], run_id: int) -> None:
        self.inner.mark_seen(external_ids, run_id)

    def unseen_ids(self, run_id: int) -> list[str]:
        return self.inner.unseen_ids(run_id)

    def ids_maybe_in_dialer(self, external_ids: Sequence[str]) -> list[str]:
        return self.inner.ids_maybe_in_dialer(external_ids)

    def row_states(self, external_ids: Sequence[str]) -> dict[str, RowState]:
        return self.inner.row_states(external_ids)

    def record_ids(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        return self.inner.record_ids(external_ids)

    def claim(self, op: str, limit: int, lease_seconds: float) -> list[WorkRow]:
        return self.inner.claim(op, limit, lease_seconds)

    def record(self, changes: Sequence[Change], *, unblock: bool = False) -> None:
        self.inner.record(changes, unblock=unblock)

    def unblock(self) -> int:
        return self.inner.unblock()

    def retry_rejected(self) -> int:
        return self.inner.retry_rejected()

    def count_unsettled(self) -> int:
        return self.inner.count_unsettled()

    def count_due(self) -> int:
        return self.inner.count_due()

    def uncertain_creates(self) -> int:
        return self.inner.uncertain_creates()

    def adopt(
        self, remote: Iterable[tuple[str, str, str | None]]
    ) -> tuple[int, int, list[str], int]:
        return self.inner.adopt(remote)

    def settle_uncertain_creates(self, scan_started: datetime) -> int:
        return self.inner.settle_uncertain_creates(scan_started)

    def forget_missing(self, seen: set[str], scan_started: datetime) -> int:
        return self.inner.forget_missing(seen, scan_started)

    def count_in_dialer(self) -> int:
        return self.inner.count_in_dialer()

    def orphans(self, limit: int) -> list[tuple[int, str]]:
        return self.inner.orphans(limit)

    def drop_orphans(self, ids: Sequence[int], *, unblock: bool = False) -> None:
        self.inner.drop_orphans(ids, unblock=unblock)

    def list_others(self) -> tuple[bool, int | None]:
        return self.inner.list_others()

    def set_list_scanned(self, unique_type: str | None, others: int | None = None) -> None:
        self.inner.set_list_scanned(unique_type, others)

    def rows_by_ids(self, external_ids: Iterable[str]) -> dict[str, RowInfo]:
        return self.inner.rows_by_ids(external_ids)

    def fingerprint(self) -> Fingerprint | None:
        return self.inner.fingerprint()

    def save_fingerprint(self, fingerprint: str, inputs: dict[str, Any]) -> None:
        self.inner.save_fingerprint(fingerprint, inputs)


class RecordingStore:
    """The plan's copy of the state, as the engine sees it; notes every decision taken."""

    def __init__(self, inner: SyncStore) -> None:
        self.inner = inner
        # (destination, list) -> the decisions taken for its contacts, in order
        self.decisions: dict[tuple[str, str], list[Decision]] = defaultdict(list)
        self._lock = threading.Lock()

    def target(self, destination: str, list_id: str) -> TargetStore:
        with self._lock:
            noted = self.decisions[(destination, list_id)]
        return RecordingTarget(self.inner.target(destination, list_id), noted)

    def set_inflight(self, row_ids: Sequence[int], op: str | None) -> None:
        self.inner.set_inflight(row_ids, op)

    def record(self, changes: Sequence[Change]) -> None:
        self.inner.record(changes)

    def release_dead_claims(self) -> int:
        return self.inner.release_dead_claims()

    def drop_orphans(self, ids: Sequence[int]) -> None:
        self.inner.drop_orphans(ids)

    def get_cursor(self, name: str) -> Cursor:
        return self.inner.get_cursor(name)

    def set_cursor(self, name: str, **values: CursorValue) -> None:
        self.inner.set_cursor(name, **values)

    def move_cursor(self, name: str, *, modstamp: datetime, last_id: str) -> None:
        self.inner.move_cursor(name, modstamp=modstamp, last_id=last_id)

    def deletes_read(self, name: str, *, until: datetime) -> None:
        self.inner.deletes_read(name, until=until)

    def reconciled(self, name: str, *, at: datetime, deletes_until: datetime | None = None) -> None:
        self.inner.reconciled(name, at=at, deletes_until=deletes_until)

    def start_run(
        self, kind: str, window_start: datetime | None = None, window_end: datetime | None = None
    ) -> int:
        return self.inner.start_run(kind, window_start, window_end)

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: dict[str, int],
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None:
        self.inner.finish_run(run_id, status, counts, error, error_kind)


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
        capacity = getattr(real, "capacity", None)
        self.capacity = capacity if isinstance(capacity, ListCapacity) else None

    def render(self, record: DialerRecord) -> dict[str, Any]:
        return self.real.render(record)

    def open(self) -> TargetInfo:
        self.info = self.real.open()
        return self.info

    def _ok(self, op: str, items: Sequence[WriteItem]) -> list[ItemResult]:
        out = []
        with self._lock:
            for item in items:
                self.sent[op].append(item.external_id)
                record_id = item.record_id or f"plan-{len(self.sent['create'])}"
                out.append(ItemResult(item.external_id, Outcome.OK, record_id))
        return out

    def create(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        # The real adapter's count of the list (read by open()): the plan holds what it holds.
        granted = self.capacity.reserve(len(items)) if self.capacity else len(items)
        held = [
            ItemResult(item.external_id, Outcome.TRANSIENT, code=HELD_CODE, message="list full")
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
