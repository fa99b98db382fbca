"""Read-only views of the state database for the operator commands and the metrics.

Nothing here writes the live database. ``copy_state`` writes only the copy a plan runs on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select

from dialsync.rowstate.decide import RowState
from dialsync.store.store import ERROR_STATUSES as ERROR_STATUSES  # re-exported: render.py
from dialsync.store.store import PROBLEM_STATUSES, SyncStore
from dialsync.store.tables import (
    cursors,
    dialer_orphans,
    list_state,
    runs,
    sync_records,
    target_fingerprints,
)

R = sync_records.c
_CHUNK = 500  # ids per IN (...), as in the store
_COPY_BATCH = 2000
# What a sync reads and writes besides its own run row.
_STATE_TABLES = (sync_records, dialer_orphans, cursors, list_state, target_fingerprints)


def copy_state(source: SyncStore, target: SyncStore) -> None:
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


@dataclass(frozen=True)
class RowInfo:
    external_id: str
    status: str
    desired: str
    record_id: str | None
    reason_code: str | None
    reason_message: str | None
    payload: dict[str, Any] | None
    payload_hash: str | None
    sent_hash: str | None


def rows_by_ids(
    store: SyncStore, destination: str, list_id: str, external_ids: Iterable[str]
) -> dict[str, RowInfo]:
    ids = list(dict.fromkeys(external_ids))
    found: dict[str, RowInfo] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            query = select(*_INFO).where(
                R.destination == destination,
                R.list_id == list_id,
                R.external_id.in_(ids[start : start + _CHUNK]),
            )
            for row in conn.execute(query):
                found[row.external_id] = _info(row)
    return found


def rows_for_contact(store: SyncStore, external_id: str) -> dict[tuple[str, str], RowInfo]:
    """Every row of one contact, by (destination, list)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(R.destination, R.list_id, *_INFO).where(R.external_id == external_id)
        )
        return {(row.destination, row.list_id): _info(row) for row in rows}


def last_success(store: SyncStore) -> dict[str, datetime]:
    """When a run of each kind last finished ok."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(runs.c.kind, func.max(runs.c.finished_at))
            .where(runs.c.status == "ok")
            .group_by(runs.c.kind)
        )
        return {kind: at for kind, at in rows if at is not None}


def recent_runs(store: SyncStore, limit: int, kinds: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The last ``limit`` runs, newest first, of the given kinds (all when none)."""
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if kinds:
        query = query.where(runs.c.kind.in_(list(kinds)))
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


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


def row_states(
    store: SyncStore, destination: str, list_id: str, external_ids: Sequence[str]
) -> dict[str, RowState]:
    """What ``decide()`` reads, for a preview of what the next sync does with a contact."""
    return store.row_states(destination, list_id, list(external_ids))


# -- `dialsync errors` ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ProblemFilter:
    reasons: Sequence[str] = ()
    statuses: Sequence[str] = ()
    destinations: Sequence[str] = ()  # "talkdesk" or "talkdesk:LIST"

    def conditions(self) -> list[Any]:
        out: list[Any] = [R.status.in_(list(self.statuses or PROBLEM_STATUSES))]
        if self.reasons:
            out.append(R.reason_code.in_(list(self.reasons)))
        if self.destinations:
            either = []
            for dest in self.destinations:
                name, _, list_id = dest.partition(":")
                either.append(
                    and_(R.destination == name, R.list_id == list_id)
                    if list_id
                    else R.destination == name
                )
            out.append(or_(*either))
        return out


def problem_summary(store: SyncStore, where: ProblemFilter) -> list[dict[str, Any]]:
    """Counts by (status, reason), errors first, each part largest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(R.status, R.reason_code, func.count())
            .where(*where.conditions())
            .group_by(R.status, R.reason_code)
        )
        found = [
            {"status": status, "reason_code": reason, "count": int(n)} for status, reason, n in rows
        ]
    rank = {s: i for i, s in enumerate(PROBLEM_STATUSES)}
    found.sort(key=lambda r: (rank.get(r["status"], 99), -r["count"], r["reason_code"] or ""))
    return found


def problem_rows(store: SyncStore, where: ProblemFilter, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` rows: errors first, then expected skips (see SyncStore.problem_rows)."""
    return store.problem_rows(limit, where.conditions())


# -- `dialsync runs` -----------------------------------------------------------------------------
def runs_with_pushes(
    store: SyncStore, limit: int, kinds: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The last ``limit`` runs other than pushes, newest first, each with the push runs that
    started after it and before the next one (``pushes``, oldest first). In service mode a pull
    only records the window; the pushes it fans out do the sending."""
    heads = select(runs).where(runs.c.kind != "push").order_by(runs.c.id.desc()).limit(limit)
    if kinds:
        heads = heads.where(runs.c.kind.in_(list(kinds)))
    with store.engine.connect() as conn:
        found = [dict(row._mapping) for row in conn.execute(heads)]
        if not found:
            return []
        oldest = min(run["id"] for run in found)
        later = conn.execute(select(runs).where(runs.c.id > oldest).order_by(runs.c.id))
        pushes = [dict(row._mapping) for row in later]
    by_id = {run["id"]: run for run in found}
    for run in found:
        run["pushes"] = []
    owner: int | None = oldest
    for run in pushes:  # every later run, in order: a push belongs to the head before it
        if run["kind"] != "push":
            owner = run["id"]
        elif owner in by_id:
            by_id[owner]["pushes"].append(run)
    return found
