"""Adoption: what a scan of the dialer's list teaches the sync table.

Records of ours the table did not know are taken over, duplicates become orphans to delete,
creates whose answer was lost are settled (found: created; not found: sent again), records
removed by hand are forgotten, and the list's own facts (scanned, records of others) kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from dialsync.rowstate.decide import RowState, Status
from dialsync.store import history
from dialsync.store.database import CHUNK, Database, chunks
from dialsync.store.rows import (
    ListKey,
    claim_free,
    count,
    replace_list_row,
    rows_of,
    set_where,
)
from dialsync.store.tables import dialer_orphans, list_state, sync_records

R = sync_records.c
O = dialer_orphans.c  # noqa: E741
L = list_state.c


def uncertain_creates(db: Database, key: ListKey) -> int:
    """Rows still marked in flight for a create, with no record id and no live claim: a crash,
    a timeout, an item the dialer left unanswered."""
    now = db.clock()
    return count(
        db,
        *key.rows(),
        R.inflight == "create",
        R.record_id.is_(None),
        claim_free(now),
    )


def adopt(
    db: Database, key: ListKey, remote: Iterable[tuple[str, str, str | None]]
) -> tuple[int, int, list[str], int]:
    """Take over dialer records of ours found by a list scan: (external_id, record_id,
    the hash of its content in payload form, or None when the scan did not read it).

    Returns (adopted, duplicates, unknown external ids, edited). The record a row knows
    is kept (else the first seen); any other record with its external id becomes an orphan
    to delete. Uncertain creates are settled: found means created. A known record whose
    content is not the payload the row wants was edited by hand: it is sent again.
    """
    tally = _Tally()
    now = db.clock()
    batch: list[tuple[str, str, str | None]] = []
    for item in remote:
        batch.append(item)
        if len(batch) >= CHUNK:
            _adopt_batch(db, key, batch, tally, now)
            batch.clear()
    if batch:
        _adopt_batch(db, key, batch, tally, now)
    return tally.adopted, tally.duplicates, tally.unknown, tally.edited


class _Tally:
    def __init__(self) -> None:
        self.adopted = self.duplicates = self.edited = 0
        self.unknown: list[str] = []


def _adopt_batch(
    db: Database,
    key: ListKey,
    batch: Sequence[tuple[str, str, str | None]],
    tally: _Tally,
    now: datetime,
) -> None:
    with db.tx() as conn:
        known = rows_of(conn, key, [e for e, _, _ in batch])
        for external_id, record_id, content in batch:
            row = known.get(external_id)
            if row is None:
                tally.unknown.append(external_id)
                conn.execute(
                    insert(sync_records).values(
                        **key.columns(),
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
                    0, external_id, record_id, Status.UNVERIFIED, "absent", None, None, None, None
                )
                tally.adopted += 1
            elif row.record_id is None:
                # Ours, and the table did not know its id (a lost answer, a lost DB):
                # the content is unknown, so it is sent again as an update.
                tally.adopted += 1
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
                if content is not None and row.desired == "present" and content != row.payload_hash:
                    tally.edited += 1
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
                tally.duplicates += 1
                _add_orphan(conn, key, record_id, external_id, "duplicate", now)


def settle_uncertain_creates(db: Database, key: ListKey, scan_started: datetime) -> int:
    """After a full scan: creates still uncertain were not applied; send them again.

    Only creates sent before the scan began, and not claimed by a live worker, are settled.
    A create marked in flight before its call was sent after ``inflight_at``; one marked
    uncertain only by its answer (a destination that upserts has no write-ahead) was sent
    before that answer was recorded (``updated_at``).
    """
    now = db.clock()
    return set_where(
        db,
        key,
        R.inflight == "create",
        R.record_id.is_(None),
        func.coalesce(R.inflight_at, R.updated_at) < scan_started,
        claim_free(now),
        inflight=None,
        status=Status.PENDING,
        next_attempt_at=None,
    )


def forget_missing(db: Database, key: ListKey, seen: set[str], scan_started: datetime) -> int:
    """After a full scan: our records the list no longer holds were removed by hand.

    Rows written since the scan began are left alone (a concurrent create may be missing
    from pages already read).
    """
    with db.tx() as conn:
        rows = conn.execute(
            select(R.id, R.external_id, R.desired).where(
                *key.rows(), R.record_id.is_not(None), R.updated_at < scan_started
            )
        ).all()
        missing = [r for r in rows if r.external_id not in seen]
        gone = [r.external_id for r in missing if r.desired == "absent"]
        history.confirmed_absent(conn, key.destination, key.list_id, gone, db.clock())
        for status, desired in ((Status.PENDING, "present"), (Status.REMOVED, "absent")):
            ids = [r.id for r in missing if r.desired == desired]
            for part in chunks(ids):
                conn.execute(
                    update(sync_records)
                    .where(R.id.in_(part))
                    .values(
                        record_id=None,
                        sent_hash=None,
                        status=status,
                        next_attempt_at=None,
                        updated_at=db.clock(),
                    )
                )
        return len(missing)


def count_in_dialer(db: Database, key: ListKey) -> int:
    return count(db, *key.rows(), R.record_id.is_not(None))


# -- orphans: dialer records of ours that no row owns ------------------------------------------
def _add_orphan(
    conn: Connection,
    key: ListKey,
    record_id: str,
    external_id: str | None,
    reason: str,
    now: datetime,
) -> None:
    exists = conn.execute(
        select(O.id).where(*key.of(dialer_orphans), O.record_id == record_id)
    ).first()
    if exists is None:
        conn.execute(
            insert(dialer_orphans).values(
                **key.columns(),
                record_id=record_id,
                external_id=external_id,
                reason=reason,
                created_at=now,
            )
        )


def orphans(db: Database, key: ListKey, limit: int) -> list[tuple[int, str]]:
    query = select(O.id, O.record_id).where(*key.of(dialer_orphans)).order_by(O.id).limit(limit)
    with db.read() as conn:
        return [(r.id, r.record_id) for r in conn.execute(query)]


def drop_orphans(conn: Connection, ids: Sequence[int]) -> None:
    conn.execute(delete(dialer_orphans).where(O.id.in_(list(ids))))


# -- the list's own facts ----------------------------------------------------------------------
def list_others(db: Database, key: ListKey) -> tuple[bool, int | None]:
    with db.read() as conn:
        row = conn.execute(select(L.scanned_at, L.others_count).where(*key.of(list_state))).first()
    if row is None:
        return False, None
    return row.scanned_at is not None, row.others_count


def set_list_scanned(
    db: Database, key: ListKey, unique_type: str | None, others: int | None = None
) -> None:
    with db.tx() as conn:
        replace_list_row(
            conn,
            list_state,
            key,
            scanned_at=db.clock(),
            unique_identifier_type=unique_type,
            others_count=others,
        )
