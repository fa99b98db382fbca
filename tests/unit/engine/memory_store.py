"""An in-memory implementation of the store protocol (``dialsync.store.protocol``).

The rules are the store's, in Python instead of SQL: the decision and the row transitions are
the real ones (``dialsync.rowstate``); what is due, what each op claims, compare-and-set on
answers, adoption and settling follow ``store.queue`` and ``store.adoption``, and
``test_memory_store_agrees.py`` checks that the two answer alike. No database: the engine's
rooms are tested with it in milliseconds.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from dialsync.models import WAITS_FOR_ROOM
from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Desired, RowState, Status, Verdict, decide
from dialsync.rowstate.evidence import Event, Evidence
from dialsync.rowstate.transitions import Change
from dialsync.store.protocol import Cursor, CursorValue, Fingerprint, WorkRow

Row = dict[str, Any]
CLAIMABLE = (Status.PENDING, Status.RETRYING, Status.BLOCKED)


def is_due(row: Row, now: datetime) -> bool:
    at = row["next_attempt_at"]
    if row["status"] not in CLAIMABLE:
        return False
    if row["status"] == Status.BLOCKED and at is None:
        return False
    return at is None or at <= now


def needs(op: str, row: Row) -> bool:
    creating = row["inflight"] == "create"
    if op == "create":
        return row["desired"] == "present" and row["record_id"] is None and not creating
    if op == "update":
        return row["desired"] == "present" and row["record_id"] is not None
    if op == "delete":
        return row["desired"] == "absent" and row["record_id"] is not None
    return row["desired"] == "absent" and row["record_id"] is None and not creating


def at_rest_consistent(row: Row) -> bool:
    status = row["status"]
    if status == Status.SYNCED:
        return (
            row["desired"] == "present"
            and row["record_id"] is not None
            and row["sent_hash"] == row["payload_hash"]
        )
    if status in (Status.SKIPPED, Status.REMOVED):
        return row["record_id"] is None and row["inflight"] != "create"
    return status in (Status.REJECTED, Status.BLOCKED)


def state(row: Row) -> RowState:
    return RowState(
        row["id"],
        row["external_id"],
        row["record_id"],
        row["status"],
        row["desired"],
        row["payload_hash"],
        row["sent_hash"],
        row["source_modstamp"],
        row["inflight"],
    )


class MemoryTarget:
    def __init__(self, store: MemoryStore, destination: str, list_id: str) -> None:
        self.store = store
        self._destination = destination
        self._list_id = list_id

    @property
    def destination(self) -> str:
        return self._destination

    @property
    def list_id(self) -> str:
        return self._list_id

    # -- helpers ------------------------------------------------------------------------------
    def _rows(self) -> list[Row]:
        return [
            r
            for r in self.store.rows.values()
            if r["destination"] == self._destination and r["list_id"] == self._list_id
        ]

    def _by_external(self) -> dict[str, Row]:
        return {r["external_id"]: r for r in self._rows()}

    def _set(self, where: Callable[[Row], bool], **values: Any) -> int:
        with self.store.lock:
            hit = [r for r in self._rows() if where(r)]
            for row in hit:
                row.update(values)
            return len(hit)

    # -- the pull side -------------------------------------------------------------------------
    def apply(
        self,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> list[Verdict]:
        now = self.store.clock()
        verdicts = []
        with self.store.lock:
            known = self._by_external()
            updated: list[Row] = []
            for want in wants:
                row = known.get(want.external_id)
                was = state(row) if row is not None else None
                verdict = decide(was, want)
                verdicts.append(verdict)
                if dry_run:
                    continue
                if was is not None and not mark_seen and transitions.reread(verdict, was, want):
                    continue
                values = transitions.pulled(verdict, was, want, run_id, now)
                if row is None:
                    known[want.external_id] = self.store.insert(
                        self._destination, self._list_id, want.external_id, **values
                    )
                else:
                    row.update(values)
                    updated.append(row)
            for row in updated:  # store._unsettle
                if row["status"] in transitions.AT_REST and not at_rest_consistent(row):
                    row.update(status=Status.PENDING, next_attempt_at=None, updated_at=now)
        return verdicts

    def mark_seen(self, external_ids: Sequence[str], run_id: int) -> None:
        wanted = set(external_ids)
        self._set(lambda r: r["external_id"] in wanted, last_seen_run=run_id)

    def unverified_ids(self) -> list[str]:
        with self.store.lock:
            return [r["external_id"] for r in self._rows() if r["status"] == Status.UNVERIFIED]

    def unseen_ids(self, run_id: int) -> list[str]:
        with self.store.lock:
            return [
                r["external_id"]
                for r in self._rows()
                if r["last_seen_run"] != run_id and self._maybe_in_dialer(r)
            ]

    @staticmethod
    def _maybe_in_dialer(row: Row) -> bool:
        return (
            row["desired"] == "present"
            or row["record_id"] is not None
            or row["inflight"] == "create"
        )

    def ids_maybe_in_dialer(self, external_ids: Sequence[str]) -> list[str]:
        with self.store.lock:
            known = self._by_external()
        return [i for i in external_ids if i in known and self._maybe_in_dialer(known[i])]

    def row_states(self, external_ids: Sequence[str]) -> dict[str, RowState]:
        known = self._by_external()
        return {i: state(known[i]) for i in external_ids if i in known}

    def record_ids(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        known = self._by_external()
        return {i: known[i]["record_id"] for i in external_ids if i in known}

    # -- the work queue ------------------------------------------------------------------------
    def claim(self, op: str, limit: int, lease_seconds: float) -> list[WorkRow]:
        now = self.store.clock()
        with self.store.lock:
            token = f"claim-{next(self.store.tokens)}"
            free = [
                r
                for r in sorted(self._rows(), key=lambda r: r["id"])
                if is_due(r, now)
                and (r["claim_expires_at"] is None or r["claim_expires_at"] < now)
                and needs(op, r)
            ][:limit]
            for row in free:
                row.update(
                    claimed_by=token, claim_expires_at=now + timedelta(seconds=lease_seconds)
                )
            return [
                WorkRow(
                    r["id"],
                    r["external_id"],
                    r["record_id"],
                    r["desired"],
                    json.loads(r["payload"]) if r["payload"] else None,
                    r["payload_hash"],
                    r["sent_hash"],
                    r["attempts"],
                    r["inflight"],
                    r["reason_code"],
                )
                for r in free
            ]

    def record(
        self, changes: Sequence[Change], evidence: Evidence = (), *, unblock: bool = False
    ) -> None:
        now = self.store.clock()
        release = {"updated_at": now, "claimed_by": None, "claim_expires_at": None}
        with self.store.lock:
            self.store.events.extend(evidence)
            for change in changes:
                row = self.store.rows[change.id]
                expect = change.expect
                held = expect is None or (row["desired"], row["payload_hash"]) == (
                    expect.desired,
                    expect.payload_hash,
                )
                row.update(change.values if held else (change.otherwise or {}))
                row.update(release)
            if unblock:
                self.unblock()

    def unblock(self) -> int:
        now = self.store.clock()
        return self._set(
            lambda r: (
                (
                    r["status"] == Status.BLOCKED
                    or (r["status"] == Status.RETRYING and r["reason_code"] == WAITS_FOR_ROOM)
                )
                and r["next_attempt_at"] is not None
                and r["next_attempt_at"] > now
            ),
            next_attempt_at=now,
        )

    def retry_rejected(self) -> int:
        return self._set(
            lambda r: r["status"] == Status.REJECTED and r["desired"] == "present",
            status=Status.PENDING,
            next_attempt_at=None,
            updated_at=self.store.clock(),
        )

    def count_unsettled(self) -> int:
        return sum(
            1
            for r in self._rows()
            if r["status"] in (Status.PENDING, Status.RETRYING)
            or (r["inflight"] == "create" and r["record_id"] is None)
        )

    def count_due(self, op: str | None = None) -> int:
        now = self.store.clock()
        return sum(1 for r in self._rows() if is_due(r, now) and (op is None or needs(op, r)))

    def count_held(self) -> int:
        now = self.store.clock()
        return sum(
            1
            for r in self._rows()
            if r["status"] in (Status.PENDING, Status.RETRYING, Status.BLOCKED)
            and r["claimed_by"] is not None
            and r["claim_expires_at"] is not None
            and r["claim_expires_at"] >= now
        )

    # -- adoption ------------------------------------------------------------------------------
    def _uncertain(self, row: Row, now: datetime) -> bool:
        return (
            row["inflight"] == "create"
            and row["record_id"] is None
            and (row["claim_expires_at"] is None or row["claim_expires_at"] < now)
        )

    def uncertain_creates(self) -> int:
        now = self.store.clock()
        return sum(1 for r in self._rows() if self._uncertain(r, now))

    def adopt(
        self, remote: Iterable[tuple[str, str, str | None]]
    ) -> tuple[int, int, list[str], int]:
        adopted = duplicates = edited = 0
        unknown: list[str] = []
        now = self.store.clock()
        for external_id, record_id, content in remote:
            with self.store.lock:
                row = self._by_external().get(external_id)
                if row is None:
                    unknown.append(external_id)
                    self.store.insert(
                        self._destination,
                        self._list_id,
                        external_id,
                        record_id=record_id,
                        status=Status.UNVERIFIED,
                        desired="absent",
                        reason_code="adopted",
                        updated_at=now,
                    )
                    adopted += 1
                elif row["record_id"] is None:
                    adopted += 1
                    row.update(
                        record_id=record_id,
                        sent_hash=None,
                        inflight=None,
                        status=Status.PENDING,
                        next_attempt_at=None,
                        updated_at=now,
                    )
                elif row["record_id"] == record_id:
                    if (
                        content is not None
                        and row["desired"] == "present"
                        and content != row["payload_hash"]
                    ):
                        edited += 1
                        row.update(
                            sent_hash=None,
                            status=Status.PENDING,
                            next_attempt_at=None,
                            updated_at=now,
                        )
                else:
                    duplicates += 1
                    self.store.add_orphan(self._destination, self._list_id, record_id)
        return adopted, duplicates, unknown, edited

    def settle_uncertain_creates(self, scan_started: datetime) -> int:
        now = self.store.clock()
        return self._set(
            lambda r: (
                self._uncertain(r, now) and (r["inflight_at"] or r["updated_at"]) < scan_started
            ),
            inflight=None,
            status=Status.PENDING,
            next_attempt_at=None,
        )

    def forget_missing(self, seen: set[str], scan_started: datetime) -> int:
        now = self.store.clock()
        with self.store.lock:
            missing = [
                r
                for r in self._rows()
                if r["record_id"] is not None
                and r["updated_at"] < scan_started
                and r["external_id"] not in seen
            ]
            for row in missing:
                present = row["desired"] == "present"
                row.update(
                    record_id=None,
                    sent_hash=None,
                    status=Status.PENDING if present else Status.REMOVED,
                    next_attempt_at=None,
                    updated_at=now,
                )
        return len(missing)

    def count_in_dialer(self) -> int:
        return sum(1 for r in self._rows() if r["record_id"] is not None)

    def orphans(self, limit: int) -> list[tuple[int, str]]:
        mine = [
            (oid, rid)
            for oid, (dest, list_id, rid) in sorted(self.store.orphan_rows.items())
            if (dest, list_id) == (self._destination, self._list_id)
        ]
        return mine[:limit]

    def drop_orphans(self, ids: Sequence[int], *, unblock: bool = False) -> None:
        with self.store.lock:
            for oid in ids:
                self.store.orphan_rows.pop(oid, None)
            if unblock:
                self.unblock()

    def list_others(self) -> tuple[bool, int | None]:
        scanned = self.store.lists.get((self._destination, self._list_id))
        return (False, None) if scanned is None else (True, scanned[1])

    def set_list_scanned(self, unique_type: str | None, others: int | None = None) -> None:
        self.store.lists[(self._destination, self._list_id)] = (unique_type, others)

    def fingerprint(self) -> Fingerprint | None:
        return self.store.fingerprints.get((self._destination, self._list_id))

    def save_fingerprint(self, fingerprint: str, inputs: dict[str, Any]) -> None:
        self.store.fingerprints[(self._destination, self._list_id)] = Fingerprint(
            fingerprint, inputs
        )


class MemoryStore:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.rows: dict[int, Row] = {}
        self.orphan_rows: dict[int, tuple[str, str, str]] = {}
        self.lists: dict[tuple[str, str], tuple[str | None, int | None]] = {}
        self.cursors: dict[str, dict[str, CursorValue]] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.fingerprints: dict[tuple[str, str], Fingerprint] = {}
        self.ids = itertools.count(1)
        self.tokens = itertools.count(1)
        # (row id, op) of each set_inflight, in order: the write-ahead before a create
        self.inflight_log: list[tuple[int, str | None]] = []
        # the history events handed to the store, in order (rowstate.evidence)
        self.events: list[Event] = []

    def insert(self, destination: str, list_id: str, external_id: str, **values: Any) -> Row:
        row_id = next(self.ids)
        row: Row = {
            "id": row_id,
            "destination": destination,
            "list_id": list_id,
            "external_id": external_id,
            "record_id": None,
            "status": Status.PENDING,
            "desired": "present",
            "payload": None,
            "payload_hash": None,
            "sent_hash": None,
            "source_modstamp": None,
            "attempts": 0,
            "next_attempt_at": None,
            "reason_code": None,
            "reason_message": None,
            "inflight": None,
            "inflight_at": None,
            "claimed_by": None,
            "claim_expires_at": None,
            "last_seen_run": None,
            "updated_at": self.clock(),
        }
        row.update(values)
        self.rows[row_id] = row
        return row

    def add_orphan(self, destination: str, list_id: str, record_id: str) -> None:
        if (destination, list_id, record_id) not in self.orphan_rows.values():
            self.orphan_rows[next(self.ids)] = (destination, list_id, record_id)

    def row(self, destination: str, external_id: str) -> Row:
        """The test's view of one row (the first list of ``destination`` holding it)."""
        return next(
            r
            for r in self.rows.values()
            if r["destination"] == destination and r["external_id"] == external_id
        )

    # -- the SyncStore protocol ----------------------------------------------------------------
    def target(self, destination: str, list_id: str) -> MemoryTarget:
        return MemoryTarget(self, destination, list_id)

    def set_inflight(self, row_ids: Sequence[int], op: str | None, evidence: Evidence = ()) -> None:
        now = self.clock()
        with self.lock:
            self.events.extend(evidence)
            for row_id in row_ids:
                self.rows[row_id].update(inflight=op, inflight_at=now if op else None)
                self.inflight_log.append((row_id, op))

    def record_evidence(self, evidence: Evidence) -> None:
        with self.lock:
            self.events.extend(evidence)

    def release_dead_claims(self) -> int:
        with self.lock:
            held = [r for r in self.rows.values() if r["claimed_by"] is not None]
            for row in held:
                row.update(claimed_by=None, claim_expires_at=None)
        return len(held)

    def get_cursor(self, name: str) -> Cursor:
        c = self.cursors.get(name, {})
        modstamp, deleted, reconciled = (
            c.get("modstamp"),
            c.get("deleted_until"),
            c.get("reconciled_at"),
        )
        last_id = c.get("last_id")
        assert modstamp is None or isinstance(modstamp, datetime)
        assert deleted is None or isinstance(deleted, datetime)
        assert reconciled is None or isinstance(reconciled, datetime)
        assert last_id is None or isinstance(last_id, str)
        return Cursor(modstamp, last_id, deleted, reconciled)

    def set_cursor(self, name: str, **values: CursorValue) -> None:
        with self.lock:
            self.cursors.setdefault(name, {}).update(values)

    def move_cursor(self, name: str, *, modstamp: datetime, last_id: str) -> None:
        self.set_cursor(name, modstamp=modstamp, last_id=last_id)

    def deletes_read(self, name: str, *, until: datetime) -> None:
        self.set_cursor(name, deleted_until=until)

    def reconciled(self, name: str, *, at: datetime, deletes_until: datetime | None = None) -> None:
        self.set_cursor(name, reconciled_at=at)
        if deletes_until is not None:
            self.set_cursor(name, deleted_until=deletes_until)

    def start_run(
        self, kind: str, window_start: datetime | None = None, window_end: datetime | None = None
    ) -> int:
        run_id = len(self.runs) + 1
        self.runs[run_id] = {"kind": kind, "status": "running"}
        return run_id

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: dict[str, int],
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None:
        self.runs[run_id].update(status=status, counts=counts, error=error, error_kind=error_kind)

    def status_counts(self) -> dict[tuple[str, str, str], int]:
        return dict(
            Counter((r["destination"], r["list_id"], r["status"]) for r in self.rows.values())
        )

    def stuck_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {}
