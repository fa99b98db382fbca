"""What the engine and the operator commands may ask of the state database.

Two small doors: ``SyncStore`` for what spans the whole database (answers recorded by row id,
the cursor, runs, the operator's views) and ``TargetStore`` for the rows of one destination list,
got from ``SyncStore.target(destination, list_id)`` so callers name the list once. Pure data and
protocols only (a history event is a plain mapping built by ``rowstate.evidence``): nothing here
imports SQLAlchemy, so the engine depends on this module and the row state machine
(``dialsync.rowstate``) and on nothing else of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from dialsync.rowstate.decide import Desired, RowState, Verdict
from dialsync.rowstate.evidence import Evidence
from dialsync.rowstate.transitions import Change

# The outcome counters every run records (one column each in the runs table).
RUN_COUNTERS = (
    "queried",
    "created",
    "updated",
    "deleted",
    "unchanged",
    "skipped",
    "rejected",
    "retrying",
)

# A cursor field's value: the modstamps and times are datetimes, ``last_id`` a Salesforce Id.
CursorValue = datetime | str | None


@dataclass(frozen=True)
class WorkRow:
    """A claimed row with what the push needs."""

    id: int
    external_id: str
    record_id: str | None
    desired: str
    payload: dict[str, Any] | None  # the rendered destination payload (JSON object)
    payload_hash: str | None
    sent_hash: str | None
    attempts: int
    inflight: str | None
    reason_code: str | None


@dataclass(frozen=True)
class Cursor:
    modstamp: datetime | None
    last_id: str | None
    deleted_until: datetime | None
    reconciled_at: datetime | None


@dataclass(frozen=True)
class RowInfo:
    """One row as the operator sees it (`dialsync explain`, the plan's before and after)."""

    external_id: str
    status: str
    desired: str
    record_id: str | None
    reason_code: str | None
    reason_message: str | None
    payload: dict[str, Any] | None
    payload_hash: str | None
    sent_hash: str | None


@dataclass(frozen=True)
class ProblemFilter:
    """Which rows `dialsync errors` shows: by reason, by status (all problem statuses when
    none), by destination ("talkdesk" or "talkdesk:LIST")."""

    reasons: Sequence[str] = ()
    statuses: Sequence[str] = ()
    destinations: Sequence[str] = ()


@dataclass(frozen=True)
class Fingerprint:
    """What shaped a target's payloads when they were rendered (``dialsync.remap``)."""

    fingerprint: str
    inputs: dict[str, Any]  # the JSON object the fingerprint was made of


@runtime_checkable
class TargetStore(Protocol):
    """The rows of one (destination, list). Each method is one short transaction."""

    @property
    def destination(self) -> str: ...

    @property
    def list_id(self) -> str: ...

    # -- the pull side -------------------------------------------------------------------------
    def apply(
        self,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> list[Verdict]:
        """Record what the contacts now imply (``rowstate.decide``, one decision each, with
        its history); each contact's verdict, in the order of ``wants``. A re-read that
        changes nothing writes nothing, unless ``mark_seen`` (a full pass notes what it saw)."""
        ...

    def mark_seen(self, external_ids: Sequence[str], run_id: int) -> None: ...

    def unseen_ids(self, run_id: int) -> list[str]:
        """Rows that may be in the dialer but whose contact a full pass did not see."""
        ...

    def unverified_ids(self) -> list[str]:
        """Records a list scan found that the table did not know, not yet asked of the source
        (a run without the source, or one that crashed before asking, left them)."""
        ...

    def ids_maybe_in_dialer(self, external_ids: Sequence[str]) -> list[str]: ...

    def row_states(self, external_ids: Sequence[str]) -> dict[str, RowState]:
        """What ``decide()`` reads for these contacts."""
        ...

    def record_ids(self, external_ids: Sequence[str]) -> dict[str, str | None]: ...

    # -- the work queue ------------------------------------------------------------------------
    def claim(self, op: str, limit: int, lease_seconds: float) -> list[WorkRow]:
        """Claim up to ``limit`` due rows needing ``op`` (create, update, delete or noop)."""
        ...

    def record(
        self, changes: Sequence[Change], evidence: Evidence = (), *, unblock: bool = False
    ) -> None:
        """Apply per-row transitions (``rowstate.transitions``) to rows of this list in one
        transaction; their claims are released with them, and the history events
        (``rowstate.evidence``) are written in it. With ``unblock``, this list's blocked rows
        become due in that transaction too (a record changed or went: it may have held what
        refused them)."""
        ...

    def unblock(self) -> int:
        """Blocked rows of this list are due now; how many."""
        ...

    def retry_rejected(self) -> int:
        """Rows the dialer refused are tried once more; how many."""
        ...

    def count_unsettled(self) -> int: ...

    def count_due(self, op: str | None = None) -> int:
        """Rows due now, of every op or of ``op`` only."""
        ...

    def count_held(self) -> int:
        """Rows a live claim holds (a push somewhere is sending them)."""
        ...

    # -- adoption (a scan of the dialer's list) ------------------------------------------------
    def uncertain_creates(self) -> int:
        """Creates that were sent but whose answer was never recorded."""
        ...

    def adopt(
        self, remote: Iterable[tuple[str, str, str | None]]
    ) -> tuple[int, int, list[str], int]:
        """Take over records found by a scan: (external_id, record_id, content hash or None).
        Returns (adopted, duplicates, unknown external ids, edited)."""
        ...

    def settle_uncertain_creates(self, scan_started: datetime) -> int: ...

    def forget_missing(self, seen: set[str], scan_started: datetime) -> int: ...

    def count_in_dialer(self) -> int: ...

    def orphans(self, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` (orphan id, record id) of duplicate records to delete."""
        ...

    def drop_orphans(self, ids: Sequence[int], *, unblock: bool = False) -> None:
        """Forget orphans the dialer deleted; with ``unblock``, as ``record`` does."""
        ...

    def list_others(self) -> tuple[bool, int | None]:
        """(scanned ever, records of other providers at the last scan, when known)."""
        ...

    def set_list_scanned(self, unique_type: str | None, others: int | None = None) -> None: ...

    # -- the mapping's fingerprint -------------------------------------------------------------
    def fingerprint(self) -> Fingerprint | None:
        """What the list's rows were last rendered with (None: never recorded)."""
        ...

    def save_fingerprint(self, fingerprint: str, inputs: dict[str, Any]) -> None: ...


@runtime_checkable
class SyncStore(Protocol):
    """The state database: rows by target, the write-ahead by row id, the cursor and the
    runs. The answers a dialer gives are recorded by the list's ``TargetStore.record``."""

    def target(self, destination: str, list_id: str) -> TargetStore: ...

    # -- the push side, by row id --------------------------------------------------------------
    def set_inflight(self, row_ids: Sequence[int], op: str | None, evidence: Evidence = ()) -> None:
        """Write-ahead: committed before the dialer call it describes (with its evidence)."""
        ...

    def record_evidence(self, evidence: Evidence) -> None:
        """History events that go with no row change, in one statement."""
        ...

    def release_dead_claims(self) -> int:
        """Free the claims of dead processes of this host and this store's own stale ones
        (called as a run starts); how many rows."""
        ...

    # -- cursor and runs -----------------------------------------------------------------------
    def get_cursor(self, name: str) -> Cursor: ...

    def set_cursor(self, name: str, **values: CursorValue) -> None:
        """Set the given fields of a cursor (created on first use); the others are kept."""
        ...

    def move_cursor(self, name: str, *, modstamp: datetime, last_id: str) -> None:
        """The window is durable in the table up to (modstamp, last_id)."""
        ...

    def deletes_read(self, name: str, *, until: datetime) -> None:
        """Deletions are applied up to ``until``."""
        ...

    def reconciled(self, name: str, *, at: datetime, deletes_until: datetime | None = None) -> None:
        """A reconciliation finished at ``at`` (covering deletions up to ``deletes_until``)."""
        ...

    def start_run(
        self, kind: str, window_start: datetime | None = None, window_end: datetime | None = None
    ) -> int: ...

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: dict[str, int],
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None: ...


@runtime_checkable
class StoreViews(Protocol):
    """What the operator reads back (status, errors, runs, explain, metrics): not the engine's."""

    def last_success(self) -> dict[str, datetime]:
        """When a run of each kind last finished ok."""
        ...

    def recent_runs(self, limit: int, kinds: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The last ``limit`` runs, newest first, of the given kinds (all when none)."""
        ...

    def runs_with_pushes(self, limit: int, kinds: Sequence[str] = ()) -> list[dict[str, Any]]:
        """As ``recent_runs`` without pushes, each with the pushes that followed it."""
        ...

    def status_counts(self) -> dict[tuple[str, str, str], int]:
        """Rows by (destination, list, status)."""
        ...

    def stuck_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Per list: (removals that failed, rows still wrong after several tries)."""
        ...

    def rows_for_contact(self, external_id: str) -> dict[tuple[str, str], RowInfo]:
        """Every row of one contact, by (destination, list)."""
        ...

    def problem_summary(self, where: ProblemFilter) -> list[dict[str, Any]]:
        """Counts by (status, reason), errors first."""
        ...

    def problem_rows(
        self, where: ProblemFilter | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` rows that are not simply synced, errors first."""
        ...


@runtime_checkable
class StateStore(SyncStore, StoreViews, Protocol):
    """The whole state database as the CLI and the metrics see it."""
