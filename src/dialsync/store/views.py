"""Read-only views of the sync table for the operator commands and the metrics.

Nothing here writes the live database. ``copy_state`` writes only the copy a plan runs on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, or_, select

from dialsync.rowstate.decide import Status
from dialsync.store.database import Database, chunks
from dialsync.store.protocol import ProblemFilter
from dialsync.store.protocol import RowInfo as RowInfo  # re-exported: plan.py
from dialsync.store.tables import (
    cursors,
    dialer_orphans,
    list_state,
    sync_records,
    target_fingerprints,
)

R = sync_records.c
_COPY_BATCH = 2000
# What a sync reads and writes besides its own run row.
_STATE_TABLES = (sync_records, dialer_orphans, cursors, list_state, target_fingerprints)
# A row still retrying after this many tries (each after its backoff) is reported as stuck.
STUCK_ATTEMPTS = 3
# Rows that are not simply synced. Skipped rows are expected (the contact must not be called);
# rejected, blocked (refused because another record holds its phone number or external id) and
# retrying rows are errors an operator may have to act on.
ERROR_STATUSES: tuple[str, ...] = (Status.REJECTED, Status.BLOCKED, Status.RETRYING)
EXPECTED_STATUSES: tuple[str, ...] = (Status.SKIPPED,)
PROBLEM_STATUSES = ERROR_STATUSES + EXPECTED_STATUSES


def copy_state(source: Database, target: Database) -> None:
    """Copy the sync table, orphans, cursors and list state into an empty, migrated store.

    A consistent snapshot: SQLite's online backup between two SQLite files (pages, not rows:
    100,000 rows take well under a second), else one read transaction copied row by row
    (about 5 s per 100,000 rows).
    """
    if source.engine.dialect.name == target.engine.dialect.name == "sqlite":
        reader, writer = source.engine.raw_connection(), target.engine.raw_connection()
        try:
            reader.driver_connection.backup(writer.driver_connection)  # type: ignore[union-attr]
        finally:
            reader.close()
            writer.close()
        return
    with source.engine.connect() as src, target.engine.begin() as dst:
        for table in _STATE_TABLES:
            result = src.execution_options(yield_per=_COPY_BATCH).execute(select(table))
            for part in result.partitions():
                dst.execute(insert(table), [dict(row._mapping) for row in part])


# -- one contact's rows ------------------------------------------------------------------------
def rows_by_ids(
    db: Database, destination: str, list_id: str, external_ids: Iterable[str]
) -> dict[str, RowInfo]:
    ids = list(dict.fromkeys(external_ids))
    found: dict[str, RowInfo] = {}
    with db.read() as conn:
        for part in chunks(ids):
            query = select(*_INFO).where(
                R.destination == destination, R.list_id == list_id, R.external_id.in_(part)
            )
            for row in conn.execute(query):
                found[row.external_id] = _info(row)
    return found


def rows_for_contact(db: Database, external_id: str) -> dict[tuple[str, str], RowInfo]:
    with db.read() as conn:
        rows = conn.execute(
            select(R.destination, R.list_id, *_INFO).where(R.external_id == external_id)
        )
        return {(row.destination, row.list_id): _info(row) for row in rows}


_INFO = (
    R.external_id,
    R.status,
    R.desired,
    R.record_id,
    R.reason_code,
    R.reason_message,
    R.payload,
    R.payload_hash,
    R.sent_hash,
)


def _info(row: Any) -> RowInfo:
    return RowInfo(
        row.external_id,
        row.status,
        row.desired,
        row.record_id,
        row.reason_code,
        row.reason_message,
        json.loads(row.payload) if row.payload else None,
        row.payload_hash,
        row.sent_hash,
    )


# -- counts: `dialsync status`, the metrics ------------------------------------------------------
def status_counts(db: Database) -> dict[tuple[str, str, str], int]:
    with db.read() as conn:
        rows = conn.execute(
            select(R.destination, R.list_id, R.status, func.count()).group_by(
                R.destination, R.list_id, R.status
            )
        )
        return {(d, li, s): int(n) for d, li, s, n in rows}


def stuck_counts(db: Database) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (destination, list): rows that must leave the list but whose removal failed,
    and rows still wrong after STUCK_ATTEMPTS tries (each after its backoff)."""
    removal = and_(R.desired == "absent", R.record_id.is_not(None), R.attempts > 0)
    stuck = and_(R.status == Status.RETRYING, R.attempts >= STUCK_ATTEMPTS)
    with db.read() as conn:
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


# -- `dialsync errors` ---------------------------------------------------------------------------
def problem_conditions(where: ProblemFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [R.status.in_(list(where.statuses or PROBLEM_STATUSES))]
    if where.reasons:
        out.append(R.reason_code.in_(list(where.reasons)))
    if where.destinations:
        either = []
        for dest in where.destinations:
            name, _, list_id = dest.partition(":")
            either.append(
                and_(R.destination == name, R.list_id == list_id)
                if list_id
                else R.destination == name
            )
        out.append(or_(*either))
    return out


def problem_summary(db: Database, where: ProblemFilter) -> list[dict[str, Any]]:
    """Counts by (status, reason), errors first, each part largest first."""
    with db.read() as conn:
        rows = conn.execute(
            select(R.status, R.reason_code, func.count())
            .where(*problem_conditions(where))
            .group_by(R.status, R.reason_code)
        )
        found = [
            {"status": status, "reason_code": reason, "count": int(n)} for status, reason, n in rows
        ]
    rank = {s: i for i, s in enumerate(PROBLEM_STATUSES)}
    found.sort(key=lambda r: (rank.get(r["status"], 99), -r["count"], r["reason_code"] or ""))
    return found


def problem_rows(
    db: Database, where: ProblemFilter | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows that are not simply synced (those ``where`` selects, when given):
    errors first (rejected, blocked, then retrying), then expected skips; the most recently
    changed first within each."""
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
        .where(*problem_conditions(where or ProblemFilter()))
        .order_by(rank, R.updated_at.desc(), R.external_id)
        .limit(limit)
    )
    with db.read() as conn:
        return [{**r._mapping, "must_remove": bool(r.must_remove)} for r in conn.execute(query)]
