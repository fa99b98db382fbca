"""The per-run context: what one run knows, handed to each room it passes through.

A ``SyncEngine`` lives as long as its process; a ``RunContext`` as long as one run. Everything
a run learns (which destinations failed, which lists were scanned, strikes against a dialer,
creates refused as duplicates waiting to be adopted, contacts a scan found that the source
must be asked about) lives here, so two runs never share it by accident.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from dialsync.destinations.base import Destination, ItemResult, TargetInfo
from dialsync.engine.report import EngineOptions, Observer, RunReport
from dialsync.errors import DialsyncError, TransientError
from dialsync.mapping import MappingConfig
from dialsync.remap import MappingWatch, TargetChange
from dialsync.rowstate import transitions
from dialsync.sources.base import ContactSource
from dialsync.store.protocol import SyncStore, TargetStore, WorkRow

log = logging.getLogger("dialsync.engine")
T = TypeVar("T")
LEASE_SECONDS = 300.0
OPS = ("delete", "update", "create")  # deletes first: a removed number frees a unique phone
# Whole batches failing in a row (each after its own bounded retries) that mark a destination
# down for the rest of the run: its rows keep their backoff and wait for a later run, instead
# of every due batch being tried against a dialer that is not answering.
DOWN_AFTER = 2


def key(dest: Destination) -> str:
    """A destination instance: one system may feed several targets (lists) at once."""
    return f"{dest.name}:{dest.target}"


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def canonical(payload: dict[str, Any]) -> tuple[str, str]:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def sent(row: WorkRow) -> transitions.Sent:
    """What a claimed row held when it was sent: its answer is recorded against this."""
    return transitions.Sent(row.id, row.desired, row.payload_hash, row.attempts)


@dataclass
class SourceView:
    """What the engine learns once, as the source first opens: the fields the source has and
    the mapping's configuration. None until then (a push-only run never opens the source)."""

    fields: list[str] | None = None
    mapping: MappingConfig | None = None


@dataclass
class RunContext:
    report: RunReport
    source: ContactSource
    destinations: list[Destination]
    store: SyncStore
    options: EngineOptions
    clock: Callable[[], datetime]
    rng: Callable[[], float]
    observer: Observer
    view: SourceView
    mapping_watch: MappingWatch
    # The engine's own dict (what each target's open() answered): it outlives the run.
    targets: dict[str, TargetInfo]
    # False in the service's pull: push tasks send the rows.
    pushing: bool = True
    failed: dict[str, DialsyncError] = field(default_factory=dict)
    # A full pass notes which rows it saw; the sweep after it reads them.
    full_pass: bool = False
    remapped: dict[str, TargetChange] = field(default_factory=dict)
    scanned: set[str] = field(default_factory=set)
    strikes: Counter[str] = field(default_factory=Counter)  # whole batches failed in a row
    # Creates a dialer refused as duplicates, still claimed: the frame adopts (or blocks) them
    # after the push that met them, since adopting takes a list scan, which a push never does.
    duplicates: dict[str, list[tuple[WorkRow, ItemResult]]] = field(default_factory=dict)
    # External ids of records a scan found that the table did not know: the frame asks the
    # source about them on the pull side (a push thread never talks to the source).
    unknown: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rows: dict[str, TargetStore] = field(default_factory=dict)

    # -- the store for one target ----------------------------------------------------------
    def rows(self, dest: Destination) -> TargetStore:
        with self._lock:
            if (bound := self._rows.get(key(dest))) is None:
                bound = self._rows[key(dest)] = self.store.target(dest.name, dest.target)
            return bound

    @property
    def fields(self) -> list[str]:
        assert self.view.fields is not None, "the source is open in a run that reads it"
        return self.view.fields

    @property
    def cursor_name(self) -> str:
        return self.source.cursor_name

    # -- destinations, one failing without holding back the others -------------------------
    def each(self, work: Callable[[Destination], None]) -> None:
        """Run ``work`` per destination; one failing destination never holds back another.

        With a single destination its error is the run's error. With several, the failed one
        is left out for the rest of the run (its rows stay queued) and the run is "partial".
        """
        for dest in self.destinations:
            if key(dest) in self.failed:
                continue
            try:
                work(dest)
            except DialsyncError as exc:
                if len(self.destinations) == 1:
                    raise
                log.error("%s failed this run, the other destinations go on: %s", key(dest), exc)
                self.failed[key(dest)] = exc

    def live(self) -> list[Destination]:
        return [d for d in self.destinations if key(d) not in self.failed]

    # -- strikes: a dialer that does not answer ---------------------------------------------
    def resend_may_duplicate(self, dest: Destination) -> bool:
        """Whether sending a create again may make a second record: not on a destination that
        upserts by external id, nor on a list that refuses a second record with one external
        id. Elsewhere a create whose answer is unknown waits for a list scan."""
        upserts = dest.capabilities.native_upsert
        return not upserts and not self.targets[key(dest)].unique_by_external_id

    def strike(self, dest: Destination, exc: TransientError) -> None:
        with self._lock:
            self.strikes[key(dest)] += 1
            down = self.strikes[key(dest)] == DOWN_AFTER
        if down:
            log.warning(
                "%s: %d batches in a row failed (%s); the rest wait for a later run",
                key(dest),
                DOWN_AFTER,
                exc,
            )

    def answered(self, dest: Destination) -> None:
        with self._lock:
            self.strikes[key(dest)] = 0

    def down(self, dest: Destination) -> bool:
        return self.strikes[key(dest)] >= DOWN_AFTER

    # -- what waits for the frame ------------------------------------------------------------
    def hold_duplicates(
        self, dest: Destination, pairs: Sequence[tuple[WorkRow, ItemResult]]
    ) -> None:
        with self._lock:
            self.duplicates.setdefault(key(dest), []).extend(pairs)

    def take_duplicates(self, dest: Destination) -> list[tuple[WorkRow, ItemResult]]:
        with self._lock:
            return self.duplicates.pop(key(dest), [])

    def ask_source(self, ids: Iterable[str]) -> None:
        with self._lock:
            self.unknown.extend(ids)

    def take_unknown(self) -> list[str]:
        with self._lock:
            ids, self.unknown = self.unknown, []
        return list(dict.fromkeys(ids))

    # -- retry timing --------------------------------------------------------------------------
    def next_attempt(self, attempts: int, retry_after: float | None) -> datetime:
        step = min(
            self.options.retry_max_seconds,
            self.options.retry_base_seconds * 2 ** min(attempts - 1, 16),
        )
        delay = max(step * (0.5 + self.rng() / 2), retry_after or 0.0)
        return self.clock() + timedelta(seconds=delay)

    def blocked(self, row: WorkRow, code: str | None) -> transitions.Change:
        """A row the dialer refuses because another record holds its external id or number."""
        return transitions.blocked(
            sent(row),
            code=code,
            message="the dialer holds another record with this external id or phone number",
            next_attempt_at=self.next_attempt(17, None),  # the slow end of the backoff
        )
