"""SyncStore: every read and write of the state database goes through here.

SQLAlchemy Core with bound parameters only. Each method is one short transaction, so a crash
between two of them leaves a state the next run can read and finish.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    String,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from dialsync.errors import ConfigError, TransientError
from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Desired, RowState, Status, Verdict, decide
from dialsync.rowstate.transitions import Change
from dialsync.store import migrate
from dialsync.store.protocol import RUN_COUNTERS, Cursor, CursorValue, TargetStore, WorkRow
from dialsync.store.tables import (
    cursors,
    dialer_orphans,
    list_state,
    runs,
    sync_records,
)
from dialsync.store.target import StoreTarget

Clock = Callable[[], datetime]
R = sync_records.c
_CHUNK = 500  # ids per IN (...) clause: well under SQLite's and Postgres's parameter limits
# A row still retrying after this many tries (each after its backoff) is reported as stuck.
STUCK_ATTEMPTS = 3
# Rows that are not simply synced. Skipped rows are expected (the contact must not be called);
# rejected, blocked (refused because another record holds its phone number or external id) and
# retrying rows are errors an operator may have to act on.
ERROR_STATUSES: tuple[str, ...] = (Status.REJECTED, Status.BLOCKED, Status.RETRYING)
EXPECTED_STATUSES: tuple[str, ...] = (Status.SKIPPED,)
PROBLEM_STATUSES = ERROR_STATUSES + EXPECTED_STATUSES


def utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# Runs kept in the runs table: a service pulling every second records 86,400 a day. The last
# run of each kind and status is always kept (`dialsync status`, the last-success gauge).
RUNS_KEPT = 10_000


class SyncStore:
    def __init__(self, engine: Engine, clock: Clock = utcnow, runs_kept: int = RUNS_KEPT) -> None:
        self.engine = engine
        self.clock = clock
        self.runs_kept = runs_kept
        # Marks this store's claims, so a run can free those an earlier run left behind.
        self._instance = uuid.uuid4().hex[:8]
        # SQLite has one writer at a time, and threads of one process waiting on its busy
        # handler sleep in growing steps: queueing them on a lock here is far faster.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    def target(self, destination: str, list_id: str) -> TargetStore:
        """The rows of one destination list."""
        return StoreTarget(self, destination, list_id)

    # -- plumbing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One write transaction. A lost or locked database is transient, not a crash."""
        with self._write_lock:
            try:
                with self.engine.begin() as conn:
                    yield conn
            except (OperationalError, InterfaceError) as exc:
                raise TransientError(
                    f"state database unavailable: {exc.__class__.__name__}: "
                    f"{str(exc.orig).splitlines()[0] if exc.orig else ''}",
                    system="store",
                ) from exc

    def _rows(
        self, conn: Connection, destination: str, list_id: str, external_ids: Sequence[str]
    ) -> dict[str, RowState]:
        found: dict[str, RowState] = {}
        cols = (
            R.id,
            R.external_id,
            R.record_id,
            R.status,
            R.desired,
            R.payload_hash,
            R.sent_hash,
            R.source_modstamp,
            R.inflight,
        )
        for part in _chunks(list(external_ids)):
            query = select(*cols).where(
                R.destination == destination, R.list_id == list_id, R.external_id.in_(part)
            )
            for row in conn.execute(query):
                found[row.external_id] = RowState(*row)
        return found

    # -- the pull side ---------------------------------------------------------------------
    def apply(
        self,
        destination: str,
        list_id: str,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> Counter[Verdict]:
        """Record what the contacts now imply; returns how many of each verdict.

        A lookback re-read of a row whose state does not change writes nothing, unless
        ``mark_seen`` (a full pass: the sweep reads which rows this run saw).
        """
        return Counter(
            self.apply_each(
                destination, list_id, wants, run_id, dry_run=dry_run, mark_seen=mark_seen
            )
        )

    def apply_each(
        self,
        destination: str,
        list_id: str,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> list[Verdict]:
        """``apply``, answering each contact's verdict (in the order of ``wants``)."""
        verdicts: list[Verdict] = []
        now = self.clock()
        with self._tx() as conn:
            existing = self._rows(conn, destination, list_id, [w.external_id for w in wants])
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for want in wants:
                row = existing.get(want.external_id)
                verdict = decide(row, want)
                verdicts.append(verdict)
                if dry_run:
                    continue
                if row is not None and not mark_seen and transitions.reread(verdict, row, want):
                    continue
                values = transitions.pulled(verdict, row, want, run_id, now)
                if row is None:
                    inserts.append(
                        {
                            "destination": destination,
                            "list_id": list_id,
                            "external_id": want.external_id,
                            "attempts": 0,
                            **values,
                        }
                    )
                else:
                    updates.append({"_id": row.id, **values})
            if inserts:
                conn.execute(insert(sync_records), inserts)
            _update_each(conn, updates, R.id == bindparam("_id"))
            if updates:
                _unsettle(conn, [u["_id"] for u in updates], now)
        return verdicts

    def mark_seen(
        self, destination: str, list_id: str, external_ids: Sequence[str], run_id: int
    ) -> None:
        with self._tx() as conn:
            for part in _chunks(list(external_ids)):
                conn.execute(
                    update(sync_records)
                    .where(
                        R.destination == destination, R.list_id == list_id, R.external_id.in_(part)
                    )
                    .values(last_seen_run=run_id)
                )

    def unseen_ids(self, destination: str, list_id: str, run_id: int) -> list[str]:
        """Rows that may be in the dialer but whose contact a full pass did not see."""
        with self.engine.connect() as conn:
            query = select(R.external_id).where(
                R.destination == destination,
                R.list_id == list_id,
                or_(R.last_seen_run.is_(None), R.last_seen_run != run_id),
                or_(R.desired == "present", R.record_id.is_not(None), R.inflight == "create"),
            )
            return list(conn.execute(query).scalars())

    def ids_maybe_in_dialer(
        self, destination: str, list_id: str, external_ids: Sequence[str]
    ) -> list[str]:
        with self.engine.connect() as conn:
            out: list[str] = []
            for part in _chunks(list(external_ids)):
                out.extend(
                    conn.execute(
                        select(R.external_id).where(
                            R.destination == destination,
                            R.list_id == list_id,
                            R.external_id.in_(part),
                            or_(
                                R.desired == "present",
                                R.record_id.is_not(None),
                                R.inflight == "create",
                            ),
                        )
                    ).scalars()
                )
            return out

    # -- the push side ---------------------------------------------------------------------
    def claim(
        self, destination: str, list_id: str, op: str, limit: int, lease_seconds: float
    ) -> list[WorkRow]:
        """Claim up to ``limit`` due rows needing ``op`` (create, update, delete or noop).

        Others skip claimed rows until the lease ends. One op per claim keeps every dialer call
        full: n changes cost ceil(n / batch) calls per op, not more.
        """
        now = self.clock()
        token = f"{self._claim_prefix()}{uuid.uuid4().hex[:12]}"
        due = and_(
            R.destination == destination,
            R.list_id == list_id,
            _is_due(now),
            or_(R.claim_expires_at.is_(None), R.claim_expires_at < now),
            _OPS[op],
        )
        with self._tx() as conn:
            pick = select(R.id).where(due).order_by(R.id).limit(limit)
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                update(sync_records)
                .where(R.id.in_(ids), due)
                .values(claimed_by=token, claim_expires_at=now + timedelta(seconds=lease_seconds))
            )
            rows = conn.execute(
                select(
                    R.id,
                    R.external_id,
                    R.record_id,
                    R.desired,
                    R.payload,
                    R.payload_hash,
                    R.sent_hash,
                    R.attempts,
                    R.inflight,
                    R.reason_code,
                )
                .where(R.id.in_(ids), R.claimed_by == token)
                .order_by(R.id)
            ).all()
        return [
            WorkRow(
                r.id,
                r.external_id,
                r.record_id,
                r.desired,
                json.loads(r.payload) if r.payload else None,
                r.payload_hash,
                r.sent_hash,
                r.attempts,
                r.inflight,
                r.reason_code,
            )
            for r in rows
        ]

    def set_inflight(self, row_ids: Sequence[int], op: str | None) -> None:
        """Write-ahead: committed before the dialer call it describes."""
        now = self.clock()
        with self._tx() as conn:
            conn.execute(
                update(sync_records)
                .where(R.id.in_(list(row_ids)))
                .values(inflight=op, inflight_at=now if op else None)
            )

    def record(self, changes: Sequence[Change]) -> None:
        with self._tx() as conn:
            self._record(conn, changes)

    def _record(self, conn: Connection, changes: Sequence[Change]) -> None:
        """Apply per-row transitions (see transitions.py) in one transaction; claims are
        released with them.

        A change with ``expect`` is compare-and-set: its values are set only where the row still
        holds the desired state and payload that were sent, its ``otherwise`` values elsewhere.
        Neither set changes those two columns, so every row matches exactly one of them.
        """
        if not changes:
            return
        now = self.clock()
        release = {"updated_at": now, "claimed_by": None, "claim_expires_at": None}
        plain: list[dict[str, Any]] = []
        held: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for change in changes:
            if change.expect is None:
                plain.append({"_id": change.id, **change.values, **release})
                continue
            cond = {
                "_id": change.id,
                "_desired": change.expect.desired,
                "_hash": change.expect.payload_hash,
            }
            held.append({**cond, **change.values, **release})
            moved.append({**cond, **(change.otherwise or {}), **release})
        still = and_(
            R.id == bindparam("_id"),
            R.desired == bindparam("_desired"),
            R.payload_hash.is_not_distinct_from(bindparam("_hash", type_=String())),
        )
        _update_each(conn, plain, R.id == bindparam("_id"))
        _update_each(conn, moved, and_(R.id == bindparam("_id"), ~still))
        _update_each(conn, held, still)

    def _claim_prefix(self) -> str:
        return f"{socket.gethostname()[:30]}:{os.getpid()}:{self._instance}."

    def release_dead_claims(self) -> int:
        """Free claims of processes on this host that no longer exist (a killed worker), and
        this store's own claims left by an earlier run that failed before it could record
        them (the database went away mid-batch). Called as a run starts: a store runs one run
        at a time, so none of its claims is live then."""
        host = socket.gethostname()[:30]
        mine = self._claim_prefix()
        now = self.clock()
        with self._tx() as conn:
            owners = conn.execute(
                select(R.claimed_by)
                .where(R.claimed_by.is_not(None), R.claim_expires_at >= now)
                .distinct()
            ).scalars()
            dead = [o for o in owners if o.startswith(mine) or _dead_here(o, host)]
            if not dead:
                return 0
            result = conn.execute(
                update(sync_records)
                .where(R.claimed_by.in_(dead))
                .values(claimed_by=None, claim_expires_at=None)
            )
            return int(result.rowcount or 0)

    def row_states(
        self, destination: str, list_id: str, external_ids: Sequence[str]
    ) -> dict[str, RowState]:
        """What ``decide()`` reads for these contacts (previews and plans)."""
        with self.engine.connect() as conn:
            return self._rows(conn, destination, list_id, external_ids)

    def record_ids(
        self, destination: str, list_id: str, external_ids: Sequence[str]
    ) -> dict[str, str | None]:
        with self.engine.connect() as conn:
            rows = self._rows(conn, destination, list_id, external_ids)
        return {k: v.record_id for k, v in rows.items()}

    def uncertain_creates(self, destination: str, list_id: str) -> int:
        """Creates that were sent but whose answer was never recorded (a crash, a timeout)."""
        now = self.clock()
        return self._count(
            R.destination == destination,
            R.list_id == list_id,
            R.inflight == "create",
            R.record_id.is_(None),
            or_(R.claim_expires_at.is_(None), R.claim_expires_at < now),
        )

    def adopt(
        self,
        destination: str,
        list_id: str,
        remote: Iterable[tuple[str, str, str | None]],
    ) -> tuple[int, int, list[str], int]:
        """Take over dialer records of ours found by a list scan: (external_id, record_id,
        the hash of its content in payload form, or None when the scan did not read it).

        Returns (adopted, duplicates, unknown external ids, edited). The record a row knows
        is kept (else the first seen); any other record with its external id becomes an orphan
        to delete. Uncertain creates are settled: found means created. A known record whose
        content is not the payload the row wants was edited by hand: it is sent again.
        """
        adopted = duplicates = edited = 0
        unknown: list[str] = []
        now = self.clock()
        batch: list[tuple[str, str, str | None]] = []

        def flush() -> None:
            nonlocal adopted, duplicates, edited
            with self._tx() as conn:
                known = self._rows(conn, destination, list_id, [e for e, _, _ in batch])
                for external_id, record_id, content in batch:
                    row = known.get(external_id)
                    if row is None:
                        unknown.append(external_id)
                        conn.execute(
                            insert(sync_records).values(
                                destination=destination,
                                list_id=list_id,
                                external_id=external_id,
                                record_id=record_id,
                                status=Status.UNVERIFIED,
                                desired="absent",
                                reason_code="adopted",
                                attempts=0,
                                updated_at=now,
                            )
                        )
                        known[external_id] = RowState(
                            0,
                            external_id,
                            record_id,
                            Status.UNVERIFIED,
                            "absent",
                            None,
                            None,
                            None,
                            None,
                        )
                        adopted += 1
                    elif row.record_id is None:
                        # Ours, and the table did not know its id (a lost answer, a lost DB):
                        # the content is unknown, so it is sent again as an update.
                        adopted += 1
                        conn.execute(
                            update(sync_records)
                            .where(R.id == row.id)
                            .values(
                                record_id=record_id,
                                sent_hash=None,
                                inflight=None,
                                status=Status.PENDING,
                                next_attempt_at=None,
                                updated_at=now,
                            )
                        )
                        known[external_id] = RowState(
                            row.id,
                            external_id,
                            record_id,
                            Status.PENDING,
                            row.desired,
                            row.payload_hash,
                            None,
                            row.source_modstamp,
                            None,
                        )
                    elif row.record_id == record_id:
                        if (
                            content is not None
                            and row.desired == "present"
                            and content != row.payload_hash
                        ):
                            edited += 1
                            conn.execute(
                                update(sync_records)
                                .where(R.id == row.id)
                                .values(
                                    sent_hash=None,
                                    status=Status.PENDING,
                                    next_attempt_at=None,
                                    updated_at=now,
                                )
                            )
                    else:
                        duplicates += 1
                        self._add_orphan(
                            conn, destination, list_id, record_id, external_id, "duplicate", now
                        )
            batch.clear()

        for item in remote:
            batch.append(item)
            if len(batch) >= _CHUNK:
                flush()
        if batch:
            flush()
        return adopted, duplicates, unknown, edited

    def settle_uncertain_creates(
        self, destination: str, list_id: str, scan_started: datetime
    ) -> int:
        """After a full scan: creates still uncertain were not applied; send them again.

        Only creates sent before the scan began, and not claimed by a live worker, are settled.
        """
        now = self.clock()
        return self._set_where(
            destination,
            list_id,
            (
                R.inflight == "create",
                R.record_id.is_(None),
                R.inflight_at < scan_started,
                or_(R.claim_expires_at.is_(None), R.claim_expires_at < now),
            ),
            inflight=None,
            status=Status.PENDING,
            next_attempt_at=None,
        )

    def _set_where(
        self, destination: str, list_id: str, conditions: Sequence[Any], **values: Any
    ) -> int:
        """Set ``values`` on the rows of one list that meet ``conditions``; how many."""
        with self._tx() as conn:
            result = conn.execute(
                update(sync_records)
                .where(R.destination == destination, R.list_id == list_id, *conditions)
                .values(**values)
            )
            return int(result.rowcount or 0)

    def forget_missing(
        self, destination: str, list_id: str, seen: set[str], scan_started: datetime
    ) -> int:
        """After a full scan: our records the list no longer holds were removed by hand.

        Rows written since the scan began are left alone (a concurrent create may be missing
        from pages already read).
        """
        with self._tx() as conn:
            rows = conn.execute(
                select(R.id, R.external_id, R.desired).where(
                    R.destination == destination,
                    R.list_id == list_id,
                    R.record_id.is_not(None),
                    R.updated_at < scan_started,
                )
            ).all()
            missing = [r for r in rows if r.external_id not in seen]
            for status, desired in ((Status.PENDING, "present"), (Status.REMOVED, "absent")):
                ids = [r.id for r in missing if r.desired == desired]
                for part in _chunks(ids):
                    conn.execute(
                        update(sync_records)
                        .where(R.id.in_(part))
                        .values(
                            record_id=None,
                            sent_hash=None,
                            status=status,
                            next_attempt_at=None,
                            updated_at=self.clock(),
                        )
                    )
            return len(missing)

    def _count(self, *conditions: Any) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(sync_records).where(*conditions)
            return int(conn.execute(query).scalar_one())

    def count_in_dialer(self, destination: str, list_id: str) -> int:
        return self._count(
            R.destination == destination, R.list_id == list_id, R.record_id.is_not(None)
        )

    def _add_orphan(
        self,
        conn: Connection,
        destination: str,
        list_id: str,
        record_id: str,
        external_id: str | None,
        reason: str,
        now: datetime,
    ) -> None:
        exists = conn.execute(
            select(dialer_orphans.c.id).where(
                dialer_orphans.c.destination == destination,
                dialer_orphans.c.list_id == list_id,
                dialer_orphans.c.record_id == record_id,
            )
        ).first()
        if exists is None:
            conn.execute(
                insert(dialer_orphans).values(
                    destination=destination,
                    list_id=list_id,
                    record_id=record_id,
                    external_id=external_id,
                    reason=reason,
                    created_at=now,
                )
            )

    def orphans(self, destination: str, list_id: str, limit: int) -> list[tuple[int, str]]:
        with self.engine.connect() as conn:
            o = dialer_orphans.c
            return [
                (r.id, r.record_id)
                for r in conn.execute(
                    select(o.id, o.record_id)
                    .where(o.destination == destination, o.list_id == list_id)
                    .order_by(o.id)
                    .limit(limit)
                )
            ]

    def drop_orphans(self, ids: Sequence[int]) -> None:
        with self._tx() as conn:
            conn.execute(delete(dialer_orphans).where(dialer_orphans.c.id.in_(list(ids))))

    def drop_orphans_and_unblock(
        self, destination: str, list_id: str, ids: Sequence[int], unblock: bool
    ) -> None:
        with self._tx() as conn:
            conn.execute(delete(dialer_orphans).where(dialer_orphans.c.id.in_(list(ids))))
            if unblock:
                self._unblock(conn, destination, list_id)

    # -- list state, cursor ----------------------------------------------------------------
    def list_others(self, destination: str, list_id: str) -> tuple[bool, int | None]:
        """(scanned ever, records of other providers at the last scan, when known)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(list_state.c.scanned_at, list_state.c.others_count).where(
                    list_state.c.destination == destination, list_state.c.list_id == list_id
                )
            ).first()
            if row is None:
                return False, None
            return row.scanned_at is not None, row.others_count

    def set_list_scanned(
        self,
        destination: str,
        list_id: str,
        unique_type: str | None,
        others: int | None = None,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                delete(list_state).where(
                    list_state.c.destination == destination, list_state.c.list_id == list_id
                )
            )
            conn.execute(
                insert(list_state).values(
                    destination=destination,
                    list_id=list_id,
                    scanned_at=self.clock(),
                    unique_identifier_type=unique_type,
                    others_count=others,
                )
            )

    def get_cursor(self, name: str) -> Cursor:
        with self.engine.connect() as conn:
            row = conn.execute(select(cursors).where(cursors.c.name == name)).first()
        if row is None:
            return Cursor(None, None, None, None)
        return Cursor(row.modstamp, row.last_id, row.deleted_until, row.reconciled_at)

    def set_cursor(self, name: str, **values: CursorValue) -> None:
        with self._tx() as conn:
            values["updated_at"] = self.clock()
            result = conn.execute(update(cursors).where(cursors.c.name == name).values(**values))
            if not result.rowcount:
                conn.execute(insert(cursors).values(name=name, **values))

    def move_cursor(self, name: str, *, modstamp: datetime, last_id: str) -> None:
        self.set_cursor(name, modstamp=modstamp, last_id=last_id)

    def deletes_read(self, name: str, *, until: datetime) -> None:
        self.set_cursor(name, deleted_until=until)

    def reconciled(self, name: str, *, at: datetime, deletes_until: datetime | None = None) -> None:
        if deletes_until is None:
            self.set_cursor(name, reconciled_at=at)
        else:
            self.set_cursor(name, reconciled_at=at, deleted_until=deletes_until)

    def reset_cursor(self, name: str) -> None:
        with self._tx() as conn:
            conn.execute(delete(cursors).where(cursors.c.name == name))

    # -- runs ------------------------------------------------------------------------------
    def start_run(
        self, kind: str, window_start: datetime | None = None, window_end: datetime | None = None
    ) -> int:
        with self._tx() as conn:
            self._end_orphaned_runs(conn)
            result = conn.execute(
                insert(runs).values(
                    kind=kind,
                    status="running",
                    started_at=self.clock(),
                    window_start=window_start,
                    window_end=window_end,
                    host=socket.gethostname()[:128],
                    pid=os.getpid(),
                    **{name: 0 for name in RUN_COUNTERS},
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            run_id = int(key[0])
            self._prune_runs(conn, run_id)
            return run_id

    def _prune_runs(self, conn: Connection, newest: int) -> None:
        """Drop runs older than the last ``runs_kept`` (by id: the primary key answers it)."""
        if newest <= self.runs_kept:
            return
        latest = select(func.max(runs.c.id)).group_by(runs.c.kind, runs.c.status)
        conn.execute(
            delete(runs).where(runs.c.id <= newest - self.runs_kept, runs.c.id.not_in(latest))
        )

    def _end_orphaned_runs(self, conn: Connection) -> None:
        """Runs of this host still 'running' whose process is gone, or is this one (a process
        runs one run at a time), ended without recording it: a kill, a lost state DB."""
        host = socket.gethostname()[:128]
        stale = conn.execute(
            select(runs.c.id, runs.c.pid).where(runs.c.status == "running", runs.c.host == host)
        ).all()
        ended = [r.id for r in stale if r.pid == os.getpid() or _pid_gone(r.pid)]
        if ended:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(ended))
                .values(
                    status="interrupted",
                    finished_at=self.clock(),
                    error="ended without recording its end (process killed or state DB lost)",
                )
            )

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: dict[str, int],
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=self.clock(),
                    error=error,
                    error_kind=error_kind,
                    **{k: int(v) for k, v in counts.items() if k in RUN_COUNTERS},
                )
            )

    def last_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def status_counts(self) -> dict[tuple[str, str, str], int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(R.destination, R.list_id, R.status, func.count()).group_by(
                    R.destination, R.list_id, R.status
                )
            )
            return {(d, li, s): int(n) for d, li, s, n in rows}

    def problem_rows(
        self, limit: int = 1000, conditions: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` rows that are not simply synced (those meeting ``conditions``, when
        given): errors first (rejected, blocked, then retrying), then expected skips; the most
        recently changed first within each."""
        rank = case({s: i for i, s in enumerate(PROBLEM_STATUSES)}, value=R.status, else_=99)
        query = (
            select(
                R.destination,
                R.list_id,
                R.external_id,
                R.status,
                R.reason_code,
                R.reason_message,
                R.attempts,
                R.next_attempt_at,
                R.updated_at,
                # must leave the list (do not call, deleted) but the dialer still holds it
                and_(R.desired == "absent", R.record_id.is_not(None)).label("must_remove"),
            )
            .where(*(conditions or [R.status.in_(PROBLEM_STATUSES)]))
            .order_by(rank, R.updated_at.desc(), R.external_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [{**r._mapping, "must_remove": bool(r.must_remove)} for r in conn.execute(query)]

    def stuck_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Per (destination, list): rows that must leave the list but whose removal failed,
        and rows still wrong after STUCK_ATTEMPTS tries (each after its backoff)."""
        removal = and_(R.desired == "absent", R.record_id.is_not(None), R.attempts > 0)
        stuck = and_(R.status == Status.RETRYING, R.attempts >= STUCK_ATTEMPTS)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    R.destination,
                    R.list_id,
                    func.count().filter(removal),
                    func.count().filter(stuck),
                )
                .where(R.status == Status.RETRYING)
                .group_by(R.destination, R.list_id)
            )
            return {(d, li): (int(a), int(b)) for d, li, a, b in rows}

    def unblock(self, destination: str, list_id: str) -> int:
        """A record of this list changed or went: rows refused because another record held
        their phone number or external id are due now (that record may have been it)."""
        with self._tx() as conn:
            return self._unblock(conn, destination, list_id)

    def _unblock(self, conn: Connection, destination: str, list_id: str) -> int:
        now = self.clock()
        result = conn.execute(
            update(sync_records)
            .where(
                R.destination == destination,
                R.list_id == list_id,
                R.status == Status.BLOCKED,
                R.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        return int(result.rowcount or 0)

    def record_and_unblock(
        self, destination: str, list_id: str, changes: Sequence[Change], unblock: bool
    ) -> None:
        """Record answers of this list's rows; with ``unblock``, its blocked rows are due now,
        in the same transaction."""
        with self._tx() as conn:
            self._record(conn, changes)
            if unblock:
                self._unblock(conn, destination, list_id)

    def retry_rejected(self, destination: str, list_id: str) -> int:
        """A full pass is the reconciliation: records the dialer refused are tried once more,
        since what refused them may have changed (a one-off failure, a rule fixed in the
        dialer, a record that held their number). A payload still refused is rejected again."""
        return self._set_where(
            destination,
            list_id,
            (R.status == Status.REJECTED, R.desired == "present"),
            status=Status.PENDING,
            next_attempt_at=None,
            updated_at=self.clock(),
        )

    def count_unsettled(self, destination: str, list_id: str) -> int:
        """Rows the dialer is not known to hold as wanted: queued (due or waiting for their
        backoff) or a create in flight whose answer was never recorded."""
        return self._count(
            R.destination == destination,
            R.list_id == list_id,
            or_(
                R.status.in_([Status.PENDING, Status.RETRYING]),
                and_(R.inflight == "create", R.record_id.is_(None)),
            ),
        )

    def count_due(self, destination: str, list_id: str) -> int:
        now = self.clock()
        return self._count(
            R.destination == destination,
            R.list_id == list_id,
            _is_due(now),
        )


def _is_due(now: datetime) -> Any:
    """Pending, or retrying or blocked and its time has come. Written as one IN on the indexed
    status (pending rows carry no next attempt time) so the index answers it at any table size:
    an OR of two status tests makes SQLite read every row of the list instead. A blocked row
    is due only at its time (never with none), tested after the index search."""
    return and_(
        R.status.in_([Status.PENDING, Status.RETRYING, Status.BLOCKED]),
        or_(R.next_attempt_at.is_(None), R.next_attempt_at <= now),
        or_(R.status != Status.BLOCKED, R.next_attempt_at.is_not(None)),
    )


# What each push operation takes. A create still marked in flight is not taken: it may have
# happened, and only a scan of the list can tell (see settle_uncertain_creates).
_OPS = {
    "create": and_(
        R.desired == "present",
        R.record_id.is_(None),
        or_(R.inflight.is_(None), R.inflight != "create"),
    ),
    "update": and_(R.desired == "present", R.record_id.is_not(None)),
    "delete": and_(R.desired == "absent", R.record_id.is_not(None)),
    "noop": and_(
        R.desired == "absent",
        R.record_id.is_(None),
        or_(R.inflight.is_(None), R.inflight != "create"),
    ),
}


def _dead_here(owner: str, host: str) -> bool:
    owner_host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    return owner_host == host and pid_text.isdigit() and _pid_gone(int(pid_text))


def _pid_gone(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _unsettle(conn: Connection, row_ids: Sequence[int], now: datetime) -> None:
    """Put back in the queue rows that a decision made on a stale read left at rest.

    The pull decides from rows read at the start of its transaction; a push answer committed
    meanwhile (a create just applied) can make "skipped: never in the dialer" false. A row at
    rest must agree with what the dialer holds (the table above transitions.AT_REST);
    checked in the same transaction, after the writes, so no answer recorded before is missed
    (and one recorded after is compare-and-set against the new desired state).
    """
    for part in _chunks(list(row_ids)):
        conn.execute(
            update(sync_records)
            .where(R.id.in_(part), R.status.in_(transitions.AT_REST), ~_at_rest_consistent())
            .values(status=Status.PENDING, next_attempt_at=None, updated_at=now)
        )


def _at_rest_consistent() -> Any:
    """A row at rest that agrees with what the dialer holds (see transitions.AT_REST)."""
    return or_(
        and_(
            R.status == Status.SYNCED,
            R.desired == "present",
            R.record_id.is_not(None),
            R.sent_hash == R.payload_hash,
        ),
        and_(
            R.status.in_([Status.SKIPPED, Status.REMOVED]),
            R.record_id.is_(None),
            or_(R.inflight.is_(None), R.inflight != "create"),
        ),
        R.status.in_([Status.REJECTED, Status.BLOCKED]),
    )


def _update_each(conn: Connection, rows: Sequence[dict[str, Any]], where: Any) -> None:
    """One executemany per set of columns; ``_``-prefixed keys are the condition's values."""
    for group in _group_by_keys(rows):
        keys = [k for k in group[0] if not k.startswith("_")]
        conn.execute(
            update(sync_records).where(where).values({k: bindparam(k) for k in keys}), group
        )


def _group_by_keys(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """executemany needs every dict of one call to have the same keys."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def open_store(url: str, *, clock: Clock = utcnow, auto_migrate: bool = True) -> SyncStore:
    """Connect; SQLite is created and migrated on first use, Postgres needs `db upgrade`."""
    sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"future": True}
    if sqlite:
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:
        raise ConfigError(
            f"DIALSYNC_DATABASE_URL is invalid: {exc}", setting="DIALSYNC_DATABASE_URL"
        ) from None
    if sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets `dialsync status` read while a sync writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    try:
        current = migrate.is_current(engine)
    except SQLAlchemyError as exc:
        raise TransientError(
            f"cannot open the state database: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
            system="store",
        ) from None
    if not current:
        if sqlite and auto_migrate:
            migrate.upgrade(engine)
        elif auto_migrate:
            raise ConfigError(
                "the state database is not at the current schema: run `dialsync db upgrade`",
                setting="DIALSYNC_DATABASE_URL",
            )
    return SyncStore(engine, clock)
