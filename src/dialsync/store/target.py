"""``StoreTarget``: the rows of one (destination, list), bound once (``TargetStore``).

Callers name the list once (``store.target(dest.name, dest.target)``) instead of on every
call; each method is one operation of the store's modules on that list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dialsync.rowstate.decide import Desired, RowState, Verdict
from dialsync.rowstate.evidence import Evidence
from dialsync.rowstate.transitions import Change
from dialsync.store import adoption, fingerprints, history, queue, rows
from dialsync.store.protocol import Fingerprint, WorkRow
from dialsync.store.rows import ListKey

if TYPE_CHECKING:
    from dialsync.store.store import SqlSyncStore


class StoreTarget:
    __slots__ = ("_key", "_store")

    def __init__(self, store: SqlSyncStore, destination: str, list_id: str) -> None:
        self._store = store
        self._key = ListKey(destination, list_id)

    def __repr__(self) -> str:
        return f"StoreTarget({self._key.destination!r}, {self._key.list_id!r})"

    @property
    def destination(self) -> str:
        return self._key.destination

    @property
    def list_id(self) -> str:
        return self._key.list_id

    # -- the pull side -------------------------------------------------------------------------
    def apply(
        self,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> list[Verdict]:
        return rows.apply(
            self._store, self._key, wants, run_id, dry_run=dry_run, mark_seen=mark_seen
        )

    def mark_seen(self, external_ids: Sequence[str], run_id: int) -> None:
        rows.mark_seen(self._store, self._key, external_ids, run_id)

    def unverified_ids(self) -> list[str]:
        return rows.unverified_ids(self._store, self._key)

    def unseen_ids(self, run_id: int) -> list[str]:
        return rows.unseen_ids(self._store, self._key, run_id)

    def ids_maybe_in_dialer(self, external_ids: Sequence[str]) -> list[str]:
        return rows.ids_maybe_in_dialer(self._store, self._key, external_ids)

    def row_states(self, external_ids: Sequence[str]) -> dict[str, RowState]:
        return rows.row_states(self._store, self._key, external_ids)

    def record_ids(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        return rows.record_ids(self._store, self._key, external_ids)

    # -- the work queue ------------------------------------------------------------------------
    def claim(self, op: str, limit: int, lease_seconds: float) -> list[WorkRow]:
        prefix = self._store.claim_prefix()
        return queue.claim(self._store, self._key, op, limit, lease_seconds, prefix)

    def record(
        self, changes: Sequence[Change], evidence: Evidence = (), *, unblock: bool = False
    ) -> None:
        if not changes and not evidence and not unblock:
            return
        with self._store.tx() as conn:
            now = self._store.clock()
            history.insert_events(conn, evidence)  # what the dialer answered
            queue.record(conn, changes, now)
            if unblock:
                queue.unblock(conn, self._key, now)

    def unblock(self) -> int:
        with self._store.tx() as conn:
            return queue.unblock(conn, self._key, self._store.clock())

    def retry_rejected(self) -> int:
        return queue.retry_rejected(self._store, self._key)

    def count_unsettled(self) -> int:
        return queue.count_unsettled(self._store, self._key)

    def count_due(self, op: str | None = None) -> int:
        return queue.count_due(self._store, self._key, op)

    def count_held(self) -> int:
        return queue.count_held(self._store, self._key)

    # -- adoption ------------------------------------------------------------------------------
    def uncertain_creates(self) -> int:
        return adoption.uncertain_creates(self._store, self._key)

    def adopt(
        self, remote: Iterable[tuple[str, str, str | None]]
    ) -> tuple[int, int, list[str], int]:
        return adoption.adopt(self._store, self._key, remote)

    def settle_uncertain_creates(self, scan_started: datetime) -> int:
        return adoption.settle_uncertain_creates(self._store, self._key, scan_started)

    def forget_missing(self, seen: set[str], scan_started: datetime) -> int:
        return adoption.forget_missing(self._store, self._key, seen, scan_started)

    def count_in_dialer(self) -> int:
        return adoption.count_in_dialer(self._store, self._key)

    def orphans(self, limit: int) -> list[tuple[int, str]]:
        return adoption.orphans(self._store, self._key, limit)

    def drop_orphans(self, ids: Sequence[int], *, unblock: bool = False) -> None:
        with self._store.tx() as conn:
            adoption.drop_orphans(conn, ids)
            if unblock:
                queue.unblock(conn, self._key, self._store.clock())

    def list_others(self) -> tuple[bool, int | None]:
        return adoption.list_others(self._store, self._key)

    def set_list_scanned(self, unique_type: str | None, others: int | None = None) -> None:
        adoption.set_list_scanned(self._store, self._key, unique_type, others)

    # -- the mapping's fingerprint -------------------------------------------------------------
    def fingerprint(self) -> Fingerprint | None:
        return fingerprints.load(self._store, self._key)

    def save_fingerprint(self, fingerprint: str, inputs: dict[str, Any]) -> None:
        fingerprints.save(self._store, self._key, fingerprint, inputs)
