"""The work queue: which rows are due, claiming them for a push, recording the answers.

A row is due when its status says the dialer must change and its backoff has passed. A push
claims due rows (a lease others skip), marks them in flight before the dialer call, and
records each answer as a ``Change`` from the row state machine; the claim goes with it.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, bindparam, case, func, or_, select, update
from sqlalchemy.engine import Connection

from dialsync.models import WAITS_FOR_ROOM
from dialsync.rowstate.decide import Status
from dialsync.rowstate.evidence import Evidence
from dialsync.rowstate.transitions import Change
from dialsync.store import history, processes
from dialsync.store.database import Database
from dialsync.store.protocol import WorkRow
from dialsync.store.rows import ListKey, claim_free, claim_live, count, set_where, update_each
from dialsync.store.tables import sync_records

R = sync_records.c
ACTIVE: tuple[str, ...] = (Status.PENDING, Status.RETRYING)


CLAIMABLE: tuple[str, ...] = (Status.PENDING, Status.RETRYING, Status.BLOCKED)


def is_due(now: datetime) -> ColumnElement[bool]:
    """Pending, or retrying or blocked and its time has come. Written as one IN on the indexed
    status (pending rows carry no next attempt time) so the index answers it at any table size:
    an OR of two status tests makes SQLite read every row of the list instead. A blocked row
    is due only at its time (never with none), tested after the index search."""
    return and_(
        R.status.in_(CLAIMABLE),
        or_(R.next_attempt_at.is_(None), R.next_attempt_at <= now),
        or_(R.status != Status.BLOCKED, R.next_attempt_at.is_not(None)),
    )


# What each push operation takes. A create still marked in flight is not taken: it may have
# happened, and only a scan of the list can tell (see adoption.settle_uncertain_creates).
_NOT_CREATING = or_(R.inflight.is_(None), R.inflight != "create")
OPS: dict[str, ColumnElement[bool]] = {
    "create": and_(R.desired == "present", R.record_id.is_(None), _NOT_CREATING),
    "update": and_(R.desired == "present", R.record_id.is_not(None)),
    "delete": and_(R.desired == "absent", R.record_id.is_not(None)),
    "noop": and_(R.desired == "absent", R.record_id.is_(None), _NOT_CREATING),
}


def claim(
    db: Database, key: ListKey, op: str, limit: int, lease_seconds: float, owner_prefix: str
) -> list[WorkRow]:
    """``TargetStore.claim``: a lease others skip until it ends, taken in one transaction
    (Postgres skips the rows another claim has locked). One op per claim keeps every dialer
    call full: n changes cost ceil(n / batch) calls per op, not more."""
    now = db.clock()
    token = f"{owner_prefix}{uuid.uuid4().hex[:12]}"
    due = and_(
        *key.rows(),
        is_due(now),
        claim_free(now),
        OPS[op],
    )
    with db.tx() as conn:
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
            select(*_WORK).where(R.id.in_(ids), R.claimed_by == token).order_by(R.id)
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


_WORK = (
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


def set_inflight(
    db: Database, row_ids: Sequence[int], op: str | None, evidence: Evidence = ()
) -> None:
    """Write-ahead: committed before the dialer call it describes, with its "sent" events."""
    now = db.clock()
    with db.tx() as conn:
        history.insert_events(conn, evidence)
        conn.execute(
            update(sync_records)
            .where(R.id.in_(list(row_ids)))
            .values(inflight=op, inflight_at=now if op else None)
        )


def record(conn: Connection, changes: Sequence[Change], now: datetime) -> None:
    """Apply per-row transitions (see rowstate/transitions.py); claims are released with them.

    A change with ``expect`` is compare-and-set: its values are set only where the row still
    holds the desired state and payload that were sent, its ``otherwise`` values elsewhere.
    Neither set changes those two columns, so one UPDATE per row picks between them (CASE).
    """
    release: dict[str, Any] = {"updated_at": now, "claimed_by": None, "claim_expires_at": None}
    plain: list[dict[str, Any]] = []
    guarded: dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]] = {}
    for change in changes:
        if change.expect is None:
            plain.append({"_id": change.id, **change.values, **release})
            continue
        held = {k: v for k, v in change.values.items() if k not in release}
        moved = {k: v for k, v in (change.otherwise or {}).items() if k not in release}
        shape = (tuple(sorted(held)), tuple(sorted(moved)))
        guarded.setdefault(shape, []).append(
            {
                "_id": change.id,
                "_desired": change.expect.desired,
                "_hash": change.expect.payload_hash,
                **{f"_held_{k}": v for k, v in held.items()},
                **{f"_moved_{k}": v for k, v in moved.items()},
            }
        )
    update_each(conn, plain, R.id == bindparam("_id"))
    still = and_(
        R.desired == bindparam("_desired"),
        R.payload_hash.is_not_distinct_from(bindparam("_hash", type_=String())),
    )
    for (held_keys, moved_keys), params in guarded.items():
        values: dict[str, Any] = dict(release)
        for col in sorted({*held_keys, *moved_keys}):
            column = R[col]
            held_value = (
                bindparam(f"_held_{col}", type_=column.type) if col in held_keys else column
            )
            moved_value = (
                bindparam(f"_moved_{col}", type_=column.type) if col in moved_keys else column
            )
            values[col] = case((still, held_value), else_=moved_value)
        conn.execute(update(sync_records).where(R.id == bindparam("_id")).values(values), params)


def release_dead_claims(db: Database, mine: str) -> int:
    """Free claims of processes on this host that no longer exist (a killed worker), and
    the store's own claims (owner prefix ``mine``) left by an earlier run that failed before
    it could record them (the database went away mid-batch). Called as a run starts: a store
    runs one run at a time, so none of its claims is live then."""
    host = socket.gethostname()[:30]
    now = db.clock()
    with db.tx() as conn:
        owners = conn.execute(select(R.claimed_by).where(claim_live(now)).distinct()).scalars()
        dead = [o for o in owners if o.startswith(mine) or processes.dead_here(o, host)]
        if not dead:
            return 0
        result = conn.execute(
            update(sync_records)
            .where(R.claimed_by.in_(dead))
            .values(claimed_by=None, claim_expires_at=None)
        )
        return int(result.rowcount or 0)


def count_due(db: Database, key: ListKey, op: str | None = None) -> int:
    """Rows due now; of one op only when ``op`` is given (what ``claim(op)`` would take)."""
    conditions = [*key.rows(), is_due(db.clock())]
    if op is not None:
        conditions.append(OPS[op])
    return count(db, *conditions)


def count_held(db: Database, key: ListKey) -> int:
    """Rows under a live claim: a push (a thread, another worker, another run) holds them and
    will record its answer or give them back. Only due rows are claimed: the status test lets
    the due index answer (without it SQLite reads every row of the list)."""
    return count(
        db,
        *key.rows(),
        R.status.in_(CLAIMABLE),
        claim_live(db.clock()),
    )


def unblock(conn: Connection, key: ListKey, now: datetime) -> int:
    """A record of this list changed or went: rows refused because another record held
    their phone number or external id are due now (that record may have been it), and so
    are creates held because the list was full (there may be room now). In the caller's
    transaction: the one that records the answer or drops the orphan."""
    waiting = or_(
        R.status == Status.BLOCKED,
        and_(R.status == Status.RETRYING, R.reason_code == WAITS_FOR_ROOM),
    )
    result = conn.execute(
        update(sync_records)
        .where(*key.rows(), waiting, R.next_attempt_at > now)
        .values(next_attempt_at=now)
    )
    return int(result.rowcount or 0)


def retry_rejected(db: Database, key: ListKey) -> int:
    """A full pass is the reconciliation: records the dialer refused are tried once more,
    since what refused them may have changed (a one-off failure, a rule fixed in the
    dialer, a record that held their number). A payload still refused is rejected again."""
    return set_where(
        db,
        key,
        R.status == Status.REJECTED,
        R.desired == "present",
        status=Status.PENDING,
        next_attempt_at=None,
        updated_at=db.clock(),
    )


def count_unsettled(db: Database, key: ListKey) -> int:
    """Rows the dialer is not known to hold as wanted: queued (due or waiting for their
    backoff) or a create in flight whose answer was never recorded.

    Two counts that do not overlap, each answered by an index (the due index by status, the
    in-flight index by inflight): one OR of the two made SQLite read every row of the list."""
    queued = select(func.count()).select_from(sync_records).where(*key.rows(), R.status.in_(ACTIVE))
    creating = (
        select(func.count())
        .select_from(sync_records)
        .where(*key.rows(), R.inflight == "create", R.record_id.is_(None), R.status.not_in(ACTIVE))
    )
    with db.read() as conn:
        query = select(queued.scalar_subquery() + creating.scalar_subquery())
        return int(conn.execute(query).scalar_one())
