"""The cursor (how far the pull has read) and the runs (what each sync, pull or push did).

Runs are written here and read back by the operator commands (`dialsync runs`, `status`,
`doctor`) and the metrics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from dialsync.store import processes
from dialsync.store.database import Database
from dialsync.store.protocol import RUN_COUNTERS, Cursor, CursorValue
from dialsync.store.tables import cursors, runs

C = cursors.c
# Runs kept in the runs table: a service pulling every second records 86,400 a day. The last
# run of each kind and status is always kept (`dialsync status`, the last-success gauge).
RUNS_KEPT = 10_000


# -- the cursor ----------------------------------------------------------------------------------
def get_cursor(db: Database, name: str) -> Cursor:
    with db.read() as conn:
        row = conn.execute(select(cursors).where(C.name == name)).first()
    if row is None:
        return Cursor(None, None, None, None)
    return Cursor(row.modstamp, row.last_id, row.deleted_until, row.reconciled_at)


def set_cursor(db: Database, name: str, values: dict[str, CursorValue]) -> None:
    with db.tx() as conn:
        row = {**values, "updated_at": db.clock()}
        result = conn.execute(update(cursors).where(C.name == name).values(**row))
        if not result.rowcount:
            conn.execute(insert(cursors).values(name=name, **row))


# -- runs ----------------------------------------------------------------------------------------
def start_run(
    db: Database,
    kind: str,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    runs_kept: int = RUNS_KEPT,
) -> int:
    with db.tx() as conn:
        _end_orphaned_runs(conn, db.clock())
        result = conn.execute(
            insert(runs).values(
                kind=kind,
                status="running",
                started_at=db.clock(),
                window_start=window_start,
                window_end=window_end,
                host=processes.host(128),
                pid=os.getpid(),
                **{name: 0 for name in RUN_COUNTERS},
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        run_id = int(key[0])
        _prune_runs(conn, run_id, runs_kept)
        return run_id


def _prune_runs(conn: Connection, newest: int, runs_kept: int) -> None:
    """Drop runs older than the last ``runs_kept`` (by id: the primary key answers it)."""
    if newest <= runs_kept:
        return
    latest = select(func.max(runs.c.id)).group_by(runs.c.kind, runs.c.status)
    conn.execute(delete(runs).where(runs.c.id <= newest - runs_kept, runs.c.id.not_in(latest)))


def _end_orphaned_runs(conn: Connection, now: datetime) -> None:
    """Runs of this host still 'running' whose process is gone, or is this one (a process
    runs one run at a time), ended without recording it: a kill, a lost state DB."""
    stale = conn.execute(
        select(runs.c.id, runs.c.pid).where(
            runs.c.status == "running", runs.c.host == processes.host(128)
        )
    ).all()
    ended = [r.id for r in stale if r.pid == os.getpid() or processes.pid_gone(r.pid)]
    if ended:
        conn.execute(
            update(runs)
            .where(runs.c.id.in_(ended))
            .values(
                status="interrupted",
                finished_at=now,
                error="ended without recording its end (process killed or state DB lost)",
            )
        )


def finish_run(
    db: Database,
    run_id: int,
    status: str,
    counts: dict[str, int],
    error: str | None = None,
    error_kind: str | None = None,
) -> None:
    with db.tx() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                status=status,
                finished_at=db.clock(),
                error=error,
                error_kind=error_kind,
                **{k: int(v) for k, v in counts.items() if k in RUN_COUNTERS},
            )
        )


# -- reading them back ---------------------------------------------------------------------------
def last_success(db: Database) -> dict[str, datetime]:
    with db.read() as conn:
        rows = conn.execute(
            select(runs.c.kind, func.max(runs.c.finished_at))
            .where(runs.c.status == "ok")
            .group_by(runs.c.kind)
        )
        return {kind: at for kind, at in rows if at is not None}


def recent_runs(db: Database, limit: int, kinds: Sequence[str] = ()) -> list[dict[str, Any]]:
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if kinds:
        query = query.where(runs.c.kind.in_(list(kinds)))
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def runs_with_pushes(db: Database, limit: int, kinds: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The last ``limit`` runs other than pushes, newest first, each with the push runs that
    started after it and before the next one (``pushes``, oldest first). In service mode a pull
    only records the window; the pushes it fans out do the sending."""
    heads = select(runs).where(runs.c.kind != "push").order_by(runs.c.id.desc()).limit(limit)
    if kinds:
        heads = heads.where(runs.c.kind.in_(list(kinds)))
    with db.read() as conn:
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
