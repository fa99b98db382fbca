"""SqlSyncStore: the ``SyncStore`` protocol on a SQLAlchemy database (SQLite or Postgres).

Every read and write of the state database goes through it. Each operation lives in the
module of its idea; this class only binds them to one database:

- ``database``  the engine, the clock, the write transaction, ``connect``
- ``rows``      a list's rows: what the pull applies and reads back
- ``queue``     the work queue: due rows, claims, answers recorded, unblocking
- ``adoption``  what a scan of the dialer's list teaches (adopt, orphans, forget, settle)
- ``runs``      the cursor and the runs, and reading them back
- ``views``     read-only views of the rows for the operator and the metrics
- ``target``    the rows of one list, bound once (``store.target(destination, list_id)``)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from dialsync.rowstate.transitions import Change
from dialsync.store import adoption, processes, queue, runs, views
from dialsync.store import protocol as p
from dialsync.store.database import Clock, Database, connect
from dialsync.store.database import utcnow as utcnow  # re-exported: callers' default clock
from dialsync.store.protocol import Cursor, CursorValue, RowInfo, TargetStore
from dialsync.store.runs import RUNS_KEPT
from dialsync.store.target import StoreTarget


class SqlSyncStore(Database):
    def __init__(self, engine: Engine, clock: Clock = utcnow, runs_kept: int = RUNS_KEPT) -> None:
        super().__init__(engine, clock)
        self.runs_kept = runs_kept
        # Marks this store's claims, so a run can free those an earlier run left behind.
        self._instance = uuid.uuid4().hex[:8]

    def target(self, destination: str, list_id: str) -> TargetStore:
        """The rows of one destination list."""
        return StoreTarget(self, destination, list_id)

    def claim_prefix(self) -> str:
        """The owner prefix of this store's claims (host, pid, this instance)."""
        return processes.claim_prefix(self._instance)

    # -- the push side, by row id --------------------------------------------------------------
    def set_inflight(self, row_ids: Sequence[int], op: str | None) -> None:
        queue.set_inflight(self, row_ids, op)

    def record(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        with self.tx() as conn:
            queue.record(conn, changes, self.clock())

    def release_dead_claims(self) -> int:
        return queue.release_dead_claims(self, self.claim_prefix())

    def drop_orphans(self, ids: Sequence[int]) -> None:
        with self.tx() as conn:
            adoption.drop_orphans(conn, ids)

    # -- cursor and runs -----------------------------------------------------------------------
    def get_cursor(self, name: str) -> Cursor:
        return runs.get_cursor(self, name)

    def set_cursor(self, name: str, **values: CursorValue) -> None:
        runs.set_cursor(self, name, values)

    def move_cursor(self, name: str, *, modstamp: datetime, last_id: str) -> None:
        runs.set_cursor(self, name, {"modstamp": modstamp, "last_id": last_id})

    def deletes_read(self, name: str, *, until: datetime) -> None:
        runs.set_cursor(self, name, {"deleted_until": until})

    def reconciled(self, name: str, *, at: datetime, deletes_until: datetime | None = None) -> None:
        values: dict[str, CursorValue] = {"reconciled_at": at}
        if deletes_until is not None:
            values["deleted_until"] = deletes_until
        runs.set_cursor(self, name, values)

    def start_run(
        self, kind: str, window_start: datetime | None = None, window_end: datetime | None = None
    ) -> int:
        return runs.start_run(self, kind, window_start, window_end, self.runs_kept)

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: dict[str, int],
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None:
        runs.finish_run(self, run_id, status, counts, error, error_kind)

    def last_success(self) -> dict[str, datetime]:
        return runs.last_success(self)

    def recent_runs(self, limit: int, kinds: Sequence[str] = ()) -> list[dict[str, Any]]:
        return runs.recent_runs(self, limit, kinds)

    def runs_with_pushes(self, limit: int, kinds: Sequence[str] = ()) -> list[dict[str, Any]]:
        return runs.runs_with_pushes(self, limit, kinds)

    # -- views of the rows ---------------------------------------------------------------------
    def status_counts(self) -> dict[tuple[str, str, str], int]:
        return views.status_counts(self)

    def stuck_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        return views.stuck_counts(self)

    def rows_for_contact(self, external_id: str) -> dict[tuple[str, str], RowInfo]:
        return views.rows_for_contact(self, external_id)

    def problem_summary(self, where: p.ProblemFilter) -> list[dict[str, Any]]:
        return views.problem_summary(self, where)

    def problem_rows(
        self, where: p.ProblemFilter | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        return views.problem_rows(self, where, limit)


def _conforms(store: SqlSyncStore) -> p.StateStore:
    """mypy checks here that the class implements the protocol (and the tests at run time)."""
    return store


def open_store(url: str, *, clock: Clock = utcnow, auto_migrate: bool = True) -> SqlSyncStore:
    """Connect; SQLite is created and migrated on first use, Postgres needs `db upgrade`."""
    return SqlSyncStore(connect(url, auto_migrate=auto_migrate), clock)
