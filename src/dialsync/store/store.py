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
from datetime import datetime

from sqlalchemy import Engine

from dialsync.rowstate.evidence import Evidence
from dialsync.store import history, processes, queue, runs, views
from dialsync.store import protocol as p
from dialsync.store.database import Clock, Database, connect
from dialsync.store.database import utcnow as utcnow  # re-exported: callers' default clock
from dialsync.store.protocol import CursorValue, TargetStore
from dialsync.store.runs import RUNS_KEPT
from dialsync.store.target import StoreTarget


class SqlSyncStore(Database):
    """The protocol's methods are the modules' functions, bound to this database (their
    signatures and docstrings are in ``protocol``): only what a module cannot do alone, such
    as choosing among the cursor's fields, is written out here."""

    def __init__(self, engine: Engine, clock: Clock = utcnow, runs_kept: int = RUNS_KEPT) -> None:
        super().__init__(engine, clock)
        self.runs_kept = runs_kept
        # Marks this store's claims, so a run can free those an earlier run left behind.
        self._instance = uuid.uuid4().hex[:8]

    def target(self, destination: str, list_id: str) -> TargetStore:
        return StoreTarget(self, destination, list_id)

    def claim_prefix(self) -> str:
        """The owner prefix of this store's claims (host, pid, this instance)."""
        return processes.claim_prefix(self._instance)

    # -- the push side, by row id --------------------------------------------------------------
    set_inflight = queue.set_inflight

    def record_evidence(self, evidence: Evidence) -> None:
        if evidence:
            with self.tx() as conn:
                history.insert_events(conn, evidence)

    def release_dead_claims(self) -> int:
        return queue.release_dead_claims(self, self.claim_prefix())

    # -- cursor and runs -----------------------------------------------------------------------
    get_cursor = runs.get_cursor

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

    finish_run = runs.finish_run
    last_success = runs.last_success
    recent_runs = runs.recent_runs
    runs_with_pushes = runs.runs_with_pushes

    # -- views of the rows ---------------------------------------------------------------------
    status_counts = views.status_counts
    stuck_counts = views.stuck_counts
    rows_for_contact = views.rows_for_contact
    problem_summary = views.problem_summary
    problem_rows = views.problem_rows


def _conforms(store: SqlSyncStore) -> p.StateStore:
    """mypy checks here that the class implements the protocol (and the tests at run time)."""
    return store


def open_store(url: str, *, clock: Clock = utcnow, auto_migrate: bool = True) -> SqlSyncStore:
    """Connect; SQLite is created and migrated on first use, Postgres needs `db upgrade`."""
    return SqlSyncStore(connect(url, auto_migrate=auto_migrate), clock)
