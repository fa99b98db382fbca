"""``StoreTarget``: the store's rows of one (destination, list), bound once.

Each method is the store's method of the same name with the list filled in: callers name the
list once (``store.target(dest.name, dest.target)``) instead of on every call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dialsync.rowstate.decide import Desired, RowState, Verdict
from dialsync.rowstate.transitions import Change
from dialsync.store import fingerprints
from dialsync.store.protocol import RecordedFingerprint, WorkRow

if TYPE_CHECKING:
    from dialsync.store.store import SyncStore


class StoreTarget:
    __slots__ = ("_destination", "_list_id", "_store")

    def __init__(self, store: SyncStore, destination: str, list_id: str) -> None:
        self._store = store
        self._destination = destination
        self._list_id = list_id

    def __repr__(self) -> str:
        return f"StoreTarget({self._destination!r}, {self._list_id!r})"

    @property
    def destination(self) -> str:
        return self._destination

    @property
    def list_id(self) -> str:
        return self._list_id

    # -- the pull side -------------------------------------------------------------------------
    def apply(
        self,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> Counter[Verdict]:
        return self._store.apply(
            self._destination, self._list_id, wants, run_id, dry_run=dry_run, mark_seen=mark_seen
        )

    def apply_each(
        self,
        wants: Sequence[Desired],
        run_id: int | None,
        *,
        dry_run: bool = False,
        mark_seen: bool = True,
    ) -> list[Verdict]:
        return self._store.apply_each(
            self._destination, self._list_id, wants, run_id, dry_run=dry_run, mark_seen=mark_seen
        )

    def mark_seen(self, external_ids: Sequence[str], run_id: int) -> None:
        self._store.mark_seen(self._destination, self._list_id, external_ids, run_id)

    def unseen_ids(self, run_id: int) -> list[str]:
        return self._store.unseen_ids(self._destination, self._list_id, run_id)

    def ids_maybe_in_dialer(self, external_ids: Sequence[str]) -> list[str]:
        return self._store.ids_maybe_in_dialer(self._destination, self._list_id, external_ids)

    def row_states(self, external_ids: Sequence[str]) -> dict[str, RowState]:
        return self._store.row_states(self._destination, self._list_id, external_ids)

    def record_ids(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        return self._store.record_ids(self._destination, self._list_id, external_ids)

    # -- the work queue ------------------------------------------------------------------------
    def claim(self, op: str, limit: int, lease_seconds: float) -> list[WorkRow]:
        return self._store.claim(self._destination, self._list_id, op, limit, lease_seconds)

    def record(self, changes: Sequence[Change], *, unblock: bool = False) -> None:
        self._store.record_and_unblock(self._destination, self._list_id, changes, unblock)

    def unblock(self) -> int:
        return self._store.unblock(self._destination, self._list_id)

    def retry_rejected(self) -> int:
        return self._store.retry_rejected(self._destination, self._list_id)

    def count_unsettled(self) -> int:
        return self._store.count_unsettled(self._destination, self._list_id)

    def count_due(self) -> int:
        return self._store.count_due(self._destination, self._list_id)

    # -- adoption ------------------------------------------------------------------------------
    def uncertain_creates(self) -> int:
        return self._store.uncertain_creates(self._destination, self._list_id)

    def adopt(
        self, remote: Iterable[tuple[str, str, str | None]]
    ) -> tuple[int, int, list[str], int]:
        return self._store.adopt(self._destination, self._list_id, remote)

    def settle_uncertain_creates(self, scan_started: datetime) -> int:
        return self._store.settle_uncertain_creates(self._destination, self._list_id, scan_started)

    def forget_missing(self, seen: set[str], scan_started: datetime) -> int:
        return self._store.forget_missing(self._destination, self._list_id, seen, scan_started)

    def count_in_dialer(self) -> int:
        return self._store.count_in_dialer(self._destination, self._list_id)

    def orphans(self, limit: int) -> list[tuple[int, str]]:
        return self._store.orphans(self._destination, self._list_id, limit)

    def drop_orphans(self, ids: Sequence[int], *, unblock: bool = False) -> None:
        self._store.drop_orphans_and_unblock(self._destination, self._list_id, ids, unblock)

    def list_others(self) -> tuple[bool, int | None]:
        return self._store.list_others(self._destination, self._list_id)

    def set_list_scanned(self, unique_type: str | None, others: int | None = None) -> None:
        self._store.set_list_scanned(self._destination, self._list_id, unique_type, others)

    def fingerprint(self) -> RecordedFingerprint | None:
        return fingerprints.load(self._store, self._destination, self._list_id)

    def save_fingerprint(self, fingerprint: str, inputs: dict[str, Any]) -> None:
        fingerprints.save(self._store, self._destination, self._list_id, fingerprint, inputs)
