"""SyncEngine: pull a window -> map -> diff into the sync table -> push -> move the cursor.

It knows only the protocols (a contact source, destinations, the store). The CLI, the Celery
tasks and the tests all drive this one class.

Durability order, which is what makes a crash at any point safe:
1. a pulled batch is written to the sync table (desired state) in one transaction;
2. only then the cursor moves to the batch's last SystemModstamp;
3. a create is marked in flight (committed) before the dialer call, and the answer is recorded
   after it; a create whose answer was lost is settled by scanning the list before it is sent
   again, so a crash never duplicates a record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from dialsync.destinations.base import (
    ContentScan,
    Destination,
    ItemResult,
    Outcome,
    TargetInfo,
    WriteItem,
)
from dialsync.destinations.http import RequestRefused
from dialsync.errors import (
    AmbiguousWriteError,
    DialsyncError,
    TerminalError,
    TransientError,
    error_kind,
)
from dialsync.mapping import CONTACT_FIELDS, MappingConfig, map_contact
from dialsync.models import DialerRecord, Skip, SkipReason, SourceContact
from dialsync.remap import MappingWatch, TargetChange
from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Desired, Verdict
from dialsync.store.protocol import RUN_COUNTERS, WorkRow
from dialsync.store.store import SyncStore

log = logging.getLogger(__name__)
T = TypeVar("T")
CURSOR = "salesforce:Contact"
PULL_BATCH = 2000  # one Salesforce page: a batch is durable before the next page is read
DELETED_REACH = timedelta(days=15)  # getDeleted answers for 15 days back at most
LEASE_SECONDS = 300.0
OPS = ("delete", "update", "create")  # deletes first: a removed number frees a unique phone
# Whole batches failing in a row (each after its own bounded retries) that mark a destination
# down for the rest of the run: its rows keep their backoff and wait for a later run, instead
# of every due batch being tried against a dialer that is not answering.
DOWN_AFTER = 2


class ContactSource(Protocol):
    instance_url: str | None

    def open(self) -> None: ...
    def available(self, wanted: Iterable[str]) -> list[str]: ...
    def window(
        self, fields: list[str], start: datetime | None, end: datetime
    ) -> Iterator[SourceContact]: ...
    def by_ids(self, fields: list[str], ids: list[str]) -> Iterator[SourceContact]: ...
    def ids(self, start: datetime | None = None, scoped: bool = True) -> Iterator[str]: ...
    def deleted(self, start: datetime, end: datetime) -> Any: ...
    def close(self) -> None: ...


@dataclass
class RunReport:
    run_id: int | None
    kind: str
    counts: Counter[str] = field(default_factory=Counter)
    reconciled: bool = False
    # Destinations that failed this run (the others went on): name -> reason.
    failed: dict[str, str] = field(default_factory=dict)
    # resync: the Ids asked for that Salesforce does not return (no such contact, or deleted).
    missing: list[str] = field(default_factory=list)
    # Rows the dialer is not known to hold as wanted when the run ended (queued for a retry,
    # or a create whose answer was lost): the list is not converged yet.
    unsettled: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: int(self.counts.get(name, 0)) for name in RUN_COUNTERS}


@dataclass(frozen=True)
class EngineOptions:
    lookback: timedelta = timedelta(seconds=600)
    scoped: bool = False  # SOQL_WHERE is set: contacts outside it are removed
    default_region: str = "US"
    priority: int | None = 5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    # The mapping: a contact -> record function and the Salesforce fields it reads (a mapping
    # file replaces the default).
    mapper: Callable[[SourceContact, MappingConfig], DialerRecord | Skip] = map_contact
    fields: tuple[str, ...] = tuple(CONTACT_FIELDS)
    # Routing: whether a destination (a record list) holds this contact's record. Contacts
    # routed elsewhere are absent from it, with the reason "routed_elsewhere".
    route: Callable[[SourceContact, DialerRecord, Destination], bool] | None = None
    # Dialer calls in flight at once within one process (the service fans out tasks instead).
    push_threads: int = 4
    # What shapes payloads beyond the fields above (the mapping file's content, SOQL_WHERE,
    # the routed lists): part of each target's fingerprint (dialsync.remap).
    payload_settings: Mapping[str, Any] = field(default_factory=dict)


class Observer:
    """Hooks for progress bars, logs and metrics; the default does nothing. Must not raise."""

    def run_started(self, report: RunReport) -> None:
        """A run began: its row is written, the source and destinations are open."""

    def batch_pulled(self, report: RunReport, count: int) -> None:
        """``count`` more contacts were read and recorded in the sync table."""

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        """One dialer call answered (``dest`` is "name:target")."""

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        """One dialer call failed for the whole batch; its rows will be retried."""

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        """A run ended (status ok, partial or failed)."""


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


def _noting(
    dest: Destination, seen: set[str], contents: bool
) -> Iterator[tuple[str, str, str | None]]:
    """The list's records of ours, noting each external id in ``seen``; with ``contents``
    (and a destination that reads them), each with the hash of its content."""
    if contents and isinstance(dest, ContentScan):
        for external_id, record_id, payload in dest.scan_contents():
            seen.add(external_id)
            yield external_id, record_id, canonical(payload)[1]
        return
    for external_id, record_id in dest.scan():
        seen.add(external_id)
        yield external_id, record_id, None


def canonical(payload: dict[str, Any]) -> tuple[str, str]:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def sent(row: WorkRow) -> transitions.Sent:
    """What a claimed row held when it was sent: its answer is recorded against this."""
    return transitions.Sent(row.id, row.desired, row.payload_hash, row.attempts)


class SyncEngine:
    def __init__(
        self,
        *,
        source: ContactSource,
        destinations: Sequence[Destination],
        store: SyncStore,
        options: EngineOptions | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self.destinations = list(destinations)
        self.store = store
        self.options = options or EngineOptions()
        self.clock = clock
        self.rng = rng
        self.targets: dict[str, TargetInfo] = {}
        self._fields: list[str] | None = None
        self._mapping: MappingConfig | None = None
        self._scanned: set[str] = set()
        self._scan_lock = threading.Lock()
        self._strikes: Counter[str] = Counter()  # whole-batch failures in a row, per destination
        self._strikes_lock = threading.Lock()
        self.failed: dict[str, DialsyncError] = {}
        self._pushing = True
        self._full_pass = False  # the sweep after a full pass reads which rows it saw
        self.observer = Observer()
        # Targets whose mapping changed since their rows were rendered: re-rendered this pull.
        self.mapping_watch = MappingWatch(store)
        self.remapped: dict[str, TargetChange] = {}

    # -- entry points ------------------------------------------------------------------------
    def sync(self, *, full: bool = False, dry_run: bool = False, force: bool = False) -> RunReport:
        """One cycle. ``full`` ignores the cursor; ``force`` (resync --all) resends everything."""
        kind = "plan" if dry_run else "resync" if force else "full" if full else "sync"
        return self._run(
            kind, lambda report: self._cycle(report, full or force, dry_run, force), dry_run
        )

    def resync(self, contact_ids: Sequence[str]) -> RunReport:
        """Re-read these contacts (18-char Ids, validated by the caller) and resend them."""
        return self._run(
            "resync", lambda report: self._refresh(report, list(contact_ids), force=True), False
        )

    def refresh(self, contact_ids: Sequence[str], *, push: bool = True) -> RunReport:
        """Change hints (the stream): re-read these contacts (18-char Ids, validated by the
        caller) and record them exactly as the pull does, no forced resend. ``push=False``
        (service mode) leaves the sending to the push tasks."""
        self._pushing = push
        try:
            return self._run(
                "stream",
                lambda report: self._refresh(report, list(contact_ids), force=False),
                False,
            )
        finally:
            self._pushing = True

    def reconcile(self) -> RunReport:
        """The service's scheduled two-sided reconciliation, as `sync --full`: every record
        of the list compared with what the table wants, every in-scope contact re-read (a
        contact may enter SOQL_WHERE through a related record without a modstamp of its own),
        unseen ones confirmed gone, and every difference sent."""
        return self._run("reconcile", lambda report: self._cycle(report, True, False, False), False)

    def pull(self, *, full: bool = False) -> RunReport:
        """Service mode: read the window into the sync table and move the cursor; push tasks
        send the rows (the table is the queue of record)."""
        self._pushing = False
        try:
            return self._run(
                "full" if full else "pull",
                lambda report: self._cycle(report, full, False, False),
                False,
            )
        finally:
            self._pushing = True

    def push(self, *, deadline: float | None = None) -> RunReport:
        """Service mode: send what is due, claiming rows so workers never send one twice.

        Stops after the batch that passes ``deadline`` (time.monotonic()). No list scan here:
        scans run in the pull, under the pull lock. Records no run when nothing is due.
        """
        if not any(self.store.count_due(d.name, d.target) for d in self.destinations) and not any(
            self.store.orphans(d.name, d.target, 1) for d in self.destinations
        ):
            return RunReport(None, "push")

        def work(report: RunReport) -> None:
            self.store.release_dead_claims()
            self._push(report, final=True, deadline=deadline, scan_uncertain=False)

        return self._run("push", work, False, needs_source=False)

    def due(self) -> int:
        return sum(self.store.count_due(d.name, d.target) for d in self.destinations)

    # -- the run frame -----------------------------------------------------------------------
    def _run(
        self, kind: str, work: Callable[[RunReport], None], dry_run: bool, needs_source: bool = True
    ) -> RunReport:
        run_id = None if dry_run else self.store.start_run(kind)
        report = RunReport(run_id, kind)
        started = time.monotonic()
        try:
            self._open(needs_source)
            self.observer.run_started(report)
            work(report)
        except BaseException as exc:
            if run_id is not None:
                message = str(exc) if isinstance(exc, DialsyncError) else exc.__class__.__name__
                self.store.finish_run(
                    run_id, "failed", report.as_dict(), error=message, error_kind=error_kind(exc)
                )
            self.observer.run_finished(report, time.monotonic() - started, "failed")
            raise
        report.failed = {name: str(exc) for name, exc in self.failed.items()}
        if kind not in ("push", "pull") and not dry_run:
            report.unsettled = sum(
                self.store.count_unsettled(d.name, d.target)
                for d in self.destinations
                if key(d) not in self.failed
            )
        if run_id is not None:
            status = "partial" if report.failed else "ok"
            error = "; ".join(report.failed.values()) or None
            kinds = {error_kind(exc) for exc in self.failed.values()}
            worst = next((k for k in ("config", "error", "transient") if k in kinds), None)
            self.store.finish_run(run_id, status, report.as_dict(), error=error, error_kind=worst)
        self.observer.run_finished(
            report, time.monotonic() - started, "partial" if report.failed else "ok"
        )
        return report

    def _open(self, needs_source: bool) -> None:
        if needs_source and self._fields is None:
            self.source.open()
            self._fields = self.source.available(self.options.fields)
            self._mapping = MappingConfig(
                instance_url=(self.source.instance_url or "").rstrip("/"),
                default_region=self.options.default_region,
                priority=self.options.priority,
            )
            self.mapping_watch.compute(
                self.destinations,
                config=self._mapping,
                fields=self._fields,
                mapper=self.options.mapper,
                payload_settings=self.options.payload_settings,
            )
        # Every run: the target must still exist, and its record count tells whether
        # someone removed records by hand.
        self.failed = {}
        self._scanned.clear()
        self._strikes.clear()
        self._each(lambda dest: self.targets.__setitem__(key(dest), dest.open()))

    def _each(self, work: Callable[[Destination], None]) -> None:
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

    def close(self) -> None:
        for dest in self.destinations:
            dest.close()
        self.source.close()

    # -- the cycle ---------------------------------------------------------------------------
    def _cycle(self, report: RunReport, full: bool, dry_run: bool, force: bool) -> None:
        if not dry_run:
            # A full pass is the two-sided reconciliation: every record of the list is
            # compared with what the table wants (and the pull then re-reads every contact).
            self._prepare(report, force_scan=full)
            for dest in self.destinations if full else ():
                self.store.unblock(dest.name, dest.target)
                self.store.retry_rejected(dest.name, dest.target)
        cursor = self.store.get_cursor(CURSOR)
        self.remapped = self.mapping_watch.check(synced_before=cursor.modstamp is not None)
        incremental = cursor.modstamp is not None and not full and not self.remapped
        # The window's end is fixed now; Salesforce stamps have one-second precision.
        end = self.clock().replace(microsecond=0)
        start = cursor.modstamp - self.options.lookback if incremental and cursor.modstamp else None
        scope = set(self.source.ids(start)) if self.options.scoped else None
        high, high_id = cursor.modstamp, cursor.last_id
        self._full_pass = not incremental
        assert self._fields is not None
        with self._background_push(report, enabled=not dry_run) as wake:
            for batch in chunked(self.source.window(self._fields, start, end), PULL_BATCH):
                report.counts["queried"] += len(batch)
                self._ingest(report, batch, scope, force=force, dry_run=dry_run)
                self.observer.batch_pulled(report, len(batch))
                if dry_run:
                    continue
                last = batch[-1]
                if high is None or last.system_modstamp >= high:
                    high, high_id = last.system_modstamp, last.id
                    self.store.set_cursor(CURSOR, modstamp=high, last_id=high_id)
                wake()
        if dry_run:
            return
        self.mapping_watch.record()  # every contact is rendered with the current mapping
        if incremental and cursor.modstamp is not None:
            self._deletes(
                report,
                cursor.deleted_until or cursor.modstamp,
                end,
                must_reconcile=cursor.reconciled_at is None,
            )
        else:
            # A full pass saw every live contact: rows it did not see are gone from Salesforce.
            self._sweep(report)
            self.store.set_cursor(CURSOR, reconciled_at=end, deleted_until=end)
        self._push(report, final=True)

    def _ingest(
        self,
        report: RunReport,
        contacts: Sequence[SourceContact],
        scope: set[str] | None,
        *,
        force: bool,
        dry_run: bool = False,
    ) -> None:
        assert self._mapping is not None
        mapped: list[tuple[SourceContact, DialerRecord | Skip]] = []
        for contact in contacts:
            if scope is not None and not contact.is_deleted and contact.id not in scope:
                result: DialerRecord | Skip = Skip(
                    reason=SkipReason.OUT_OF_SCOPE,
                    message="outside DIALSYNC_SALESFORCE__SOQL_WHERE",
                )
            else:
                result = self.options.mapper(contact, self._mapping)
            mapped.append((contact, result))
        route = self.options.route
        for dest in self.destinations:
            wants = []
            for contact, result in mapped:
                if isinstance(result, DialerRecord) and route and not route(contact, result, dest):
                    result = Skip(
                        reason=SkipReason.ROUTED_ELSEWHERE, message="routed to another list"
                    )
                remap = key(dest) in self.remapped  # re-render even a contact seen already
                if isinstance(result, Skip):
                    wants.append(
                        Desired(
                            contact.id,
                            contact.system_modstamp,
                            False,
                            reason_code=result.reason.value,
                            reason_message=result.message,
                            force=force,
                            remap=remap,
                        )
                    )
                else:
                    text, digest = canonical(dest.render(result))
                    wants.append(
                        Desired(
                            contact.id,
                            contact.system_modstamp,
                            True,
                            text,
                            digest,
                            force=force,
                            remap=remap,
                        )
                    )
            self._apply(report, dest, wants, dry_run)

    def _apply(
        self, report: RunReport, dest: Destination, wants: Sequence[Desired], dry_run: bool
    ) -> None:
        verdicts = self.store.apply(
            dest.name,
            dest.target,
            wants,
            report.run_id,
            dry_run=dry_run,
            mark_seen=self._full_pass,
        )
        # WAITING rows are queued (a backoff, a create whose answer was lost): not unchanged.
        report.counts["unchanged"] += verdicts[Verdict.UNCHANGED]
        report.counts["retrying"] += verdicts[Verdict.WAITING]
        report.counts["skipped"] += verdicts[Verdict.SKIP]
        if dry_run:
            report.counts["created"] += verdicts[Verdict.CREATE]
            report.counts["updated"] += verdicts[Verdict.UPDATE]
            report.counts["deleted"] += verdicts[Verdict.DELETE]

    def _absent(
        self, report: RunReport, ids: Sequence[str], reason: SkipReason, message: str
    ) -> None:
        for dest in self.destinations:
            maybe = self.store.ids_maybe_in_dialer(dest.name, dest.target, ids)
            if maybe:
                self._apply(
                    report,
                    dest,
                    [
                        Desired(i, None, False, reason_code=reason.value, reason_message=message)
                        for i in maybe
                    ],
                    False,
                )

    # -- deletes and reconciliation ----------------------------------------------------------
    def _deletes(
        self, report: RunReport, since: datetime, end: datetime, must_reconcile: bool
    ) -> None:
        start = since - self.options.lookback
        lost = start < self.clock() - DELETED_REACH + timedelta(minutes=5)
        if not lost:
            window = self.source.deleted(start, end)
            if window.ids:
                self._absent(report, window.ids, SkipReason.DELETED, "deleted in Salesforce")
            earliest = window.earliest_available
            lost = earliest is not None and earliest > start
            self.store.set_cursor(CURSOR, deleted_until=window.latest_covered or end)
        if lost or must_reconcile:
            log.warning("deletes may have been missed (or never reconciled): reconciling Ids")
            self._reconcile(report)

    def _reconcile(self, report: RunReport) -> None:
        assert report.run_id is not None
        for ids in chunked(self.source.ids(None, scoped=True), PULL_BATCH):
            for dest in self.destinations:
                self.store.mark_seen(dest.name, dest.target, ids, report.run_id)
        self._sweep(report)
        self.store.set_cursor(CURSOR, reconciled_at=self.clock())
        report.reconciled = True

    def _sweep(self, report: RunReport) -> None:
        """Rows a full pass did not see. A contact edited after the window's end (or created
        meanwhile) is unseen too: each is confirmed by Id before its record is removed."""
        assert report.run_id is not None
        unseen: set[str] = set()
        for dest in self.destinations:
            unseen.update(self.store.unseen_ids(dest.name, dest.target, report.run_id))
        if unseen:
            ids = sorted(unseen)
            scope = set(self._scope_of(ids)) if self.options.scoped else None
            self._confirm(report, ids, scope=scope, force=False)

    def _confirm(
        self, report: RunReport, ids: list[str], *, scope: set[str] | None, force: bool
    ) -> None:
        """Re-read these contacts by Id: those Salesforce returns are decided as any pulled
        contact (within ``scope``, when given, or not), the others are gone."""
        from dialsync.salesforce_ids import is_valid_id

        assert self._fields is not None
        valid = [i for i in ids if is_valid_id(i)]
        seen: set[str] = set()
        for batch in chunked(self.source.by_ids(self._fields, valid), PULL_BATCH):
            seen.update(c.id for c in batch)
            self._ingest(report, batch, scope, force=force)
        gone = [i for i in ids if i not in seen]
        if gone:
            log.info("%d records have no contact in Salesforce any more", len(gone))
            self._absent(
                report, gone, SkipReason.NOT_IN_SALESFORCE, "no such contact in Salesforce"
            )

    def _refresh(self, report: RunReport, ids: list[str], *, force: bool) -> None:
        """Re-read contacts by Id; Ids Salesforce does not return are gone."""
        self._prepare(report)
        assert self._fields is not None
        seen: set[str] = set()
        scope = set(self._scope_of(ids)) if self.options.scoped else None
        for batch in chunked(self.source.by_ids(self._fields, ids), PULL_BATCH):
            report.counts["queried"] += len(batch)
            seen.update(c.id for c in batch)
            self._ingest(report, batch, scope, force=force)
            self.observer.batch_pulled(report, len(batch))
            self._push(report, final=False)
        missing = report.missing = [i for i in ids if i not in seen]
        if missing:
            self._absent(
                report, missing, SkipReason.NOT_IN_SALESFORCE, "no such contact in Salesforce"
            )
        self._push(report, final=True)

    def _scope_of(self, ids: list[str]) -> Iterator[str]:
        wanted = set(ids)
        return (i for i in self.source.ids(None, scoped=True) if i in wanted)

    # -- preparing the destinations ----------------------------------------------------------
    def _prepare(self, report: RunReport, force_scan: bool = False) -> None:
        self.store.release_dead_claims()
        self._each(lambda dest: self._prepare_one(report, dest, force_scan))

    def _prepare_one(self, report: RunReport, dest: Destination, force_scan: bool) -> None:
        info = self.targets[key(dest)]
        scanned, others = self.store.list_others(dest.name, dest.target)
        uncertain = self.store.uncertain_creates(dest.name, dest.target)
        ours = self.store.count_in_dialer(dest.name, dest.target)
        # A list this table has never seen may hold our records already (a lost state DB,
        # a previous tool); a create whose answer was lost may have happened; a list whose
        # count is not ours plus the other providers' records at the last scan was edited by
        # hand (records of ours removed, maybe while others were added).
        edited = info.records_count is not None and info.records_count != ours + (others or 0)
        if force_scan or uncertain or edited or (not scanned and info.records_count != 0):
            # a forced scan (the full reconciliation) compares every record's content too
            self._scan(report, dest, contents=force_scan)
        elif not scanned:
            self.store.set_list_scanned(dest.name, dest.target, info.unique_identifier_type, 0)

    def _scan(self, report: RunReport, dest: Destination, contents: bool = False) -> None:
        # Pages are numbered: a record added or removed while the list is paged shifts the
        # pages after it, so a record can be missed. What a scan found is true (adopted), but
        # what it did not find is trusted only when the list's count did not move meanwhile;
        # else it is scanned once more, and if that one overlaps writes too, "not found"
        # concludes nothing this run (a later scan settles it).
        adopted = duplicates = edited = 0
        unknown: list[str] = []
        for _ in range(2):
            before = dest.open().records_count
            started = self.clock()
            seen: set[str] = set()
            found, dupes, new, changed = self.store.adopt(
                dest.name, dest.target, _noting(dest, seen, contents)
            )
            adopted, duplicates, edited = adopted + found, duplicates + dupes, edited + changed
            unknown += new
            info = self.targets[key(dest)] = dest.open()
            trusted = before is None or info.records_count == before
            if trusted:
                break
            log.info("%s: the list changed while it was scanned", key(dest))
        missing = settled = 0
        if trusted:
            missing = self.store.forget_missing(dest.name, dest.target, seen, started)
            # A create the client gave up on (a timeout) may still land after this scan:
            # only creates sent longer ago than the destination's settle time are taken as
            # never made. A list that refuses a second record with the same external id
            # needs no wait: a create sent again is refused if the first one landed, and
            # that record is adopted.
            grace = timedelta(seconds=float(getattr(dest, "settle_seconds", 0.0)))
            if info.unique_by_external_id:
                grace = timedelta(0)
            settled = self.store.settle_uncertain_creates(dest.name, dest.target, started - grace)
        # The list's count, less ours: the other providers' records, against which the
        # next runs' counts tell whether someone edited the list by hand.
        others = (
            None
            if info.records_count is None
            else max(0, info.records_count - self.store.count_in_dialer(dest.name, dest.target))
        )
        self.store.set_list_scanned(dest.name, dest.target, info.unique_identifier_type, others)
        self._scanned.add(key(dest))
        log.info(
            "%s: list scanned: %d adopted, %d duplicates, %d unknown, %d removed by hand, "
            "%d edited by hand, %d creates never applied",
            dest.name,
            adopted,
            duplicates,
            len(unknown),
            missing,
            edited,
            settled,
        )
        if unknown and self.store.get_cursor(CURSOR).modstamp is not None:
            # Records of ours the table did not know: ask Salesforce what they should be.
            # (Before the first full pass there is no need: that pass reads them all.)
            self._fetch_unknown(report, unknown)

    def _fetch_unknown(self, report: RunReport, ids: list[str]) -> None:
        if self._fields is None:
            return  # push-only run: the next pull or reconciliation settles them
        self._confirm(report, ids, scope=None, force=True)

    # -- the push ----------------------------------------------------------------------------
    def _push(
        self,
        report: RunReport,
        *,
        final: bool,
        deadline: float | None = None,
        scan_uncertain: bool = True,
    ) -> None:
        """Drain due rows op by op in full batches; ``final`` also sends the partial ones."""
        if self._pushing:
            self._each(lambda dest: self._push_one(report, dest, final, deadline, scan_uncertain))

    def _push_one(
        self,
        report: RunReport,
        dest: Destination,
        final: bool,
        deadline: float | None = None,
        scan_uncertain: bool = True,
    ) -> None:
        self._settle_noops(dest)
        threads = self.options.push_threads
        for op in OPS:
            if threads <= 1:
                report.counts.update(self._drain(report, dest, op, final, deadline).counts)
                continue
            # Dialer round trips dominate a push; rows are claimed, so several calls in flight
            # never send one row twice (the rate limiter still spaces them).
            with ThreadPoolExecutor(threads, thread_name_prefix=f"push-{op}") as pool:
                futures = [
                    pool.submit(self._drain, report, dest, op, final, deadline)
                    for _ in range(threads)
                ]
                for future in futures:
                    report.counts.update(future.result().counts)
        if final and not self._down(dest):
            self._push_orphans(dest)
            if (
                scan_uncertain
                and self.store.uncertain_creates(dest.name, dest.target)
                and key(dest) not in self._scanned
            ):
                self._scan(report, dest)
                for op in OPS:
                    while not self._down(dest) and (
                        rows := self.store.claim(
                            dest.name, dest.target, op, dest.max_batch, LEASE_SECONDS
                        )
                    ):
                        self._send(report, dest, op, rows)

    @contextlib.contextmanager
    def _background_push(self, report: RunReport, *, enabled: bool) -> Iterator[Callable[[], None]]:
        """While the main thread pulls and maps, threads send every full batch that is due.

        Yields a function to call when new rows were recorded. On exit the threads finish the
        batches they hold and stop; the caller's final push sends the partial ones. An error in
        a thread is raised here, after the others stopped.
        """
        threads = self.options.push_threads
        if not (enabled and self._pushing and threads > 1):
            yield lambda: None
            return
        wake, done = threading.Event(), threading.Event()
        reports: list[RunReport] = []
        errors: list[BaseException] = []

        def loop() -> None:
            local = RunReport(report.run_id, report.kind)

            def drain_full_batches(dest: Destination) -> None:
                for op in OPS:
                    local.counts.update(self._drain(local, dest, op, False, None).counts)

            try:
                while not done.is_set():
                    self._each(drain_full_batches)
                    wake.wait(0.5)
                    wake.clear()
            except BaseException as exc:
                errors.append(exc)
                done.set()
            reports.append(local)

        pool = [threading.Thread(target=loop, name=f"push-{i}") for i in range(threads)]
        for thread in pool:
            thread.start()
        try:
            yield wake.set
        finally:
            done.set()
            wake.set()
            for thread in pool:
                thread.join()
            for local in reports:
                report.counts.update(local.counts)
        if errors:
            raise errors[0]

    def _drain(
        self,
        report: RunReport,
        dest: Destination,
        op: str,
        final: bool,
        deadline: float | None,
    ) -> RunReport:
        """Claim and send batches of one op until none is due; counts go to a report of its
        own (merged by the caller), so threads never share a counter."""
        local = RunReport(report.run_id, report.kind)
        limit = dest.max_batch
        while deadline is None or time.monotonic() < deadline:
            if self._down(dest):
                break
            if not final and self.store.count_due(dest.name, dest.target) < limit:
                break
            rows = self.store.claim(dest.name, dest.target, op, limit, LEASE_SECONDS)
            if not rows:
                break
            if not final and len(rows) < limit:
                self.store.record([transitions.released(r.id) for r in rows])
                break
            self._send(local, dest, op, rows)
        return local

    def _settle_noops(self, dest: Destination) -> None:
        while rows := self.store.claim(dest.name, dest.target, "noop", 500, LEASE_SECONDS):
            self.store.record([transitions.noop_settled(sent(r)) for r in rows])

    def _send(self, report: RunReport, dest: Destination, op: str, rows: Sequence[WorkRow]) -> None:
        items = [WriteItem(r.external_id, r.record_id, r.payload) for r in rows]
        if op == "create" and not dest.native_upsert:
            self.store.set_inflight([r.id for r in rows], "create")
        try:
            call = {"create": dest.create, "update": dest.update, "delete": dest.delete}[op]
            results = call(items)
        except RequestRefused as exc:
            if len(rows) > 1:  # one poison record must not sink its batch: halve and retry
                half = len(rows) // 2
                self._send(report, dest, op, rows[:half])
                self._send(report, dest, op, rows[half:])
                return
            results = [
                ItemResult(
                    items[0].external_id,
                    Outcome.REJECTED,
                    code=exc.code or f"HTTP_{exc.status}",
                    message=exc.message,
                )
            ]
        except AmbiguousWriteError as exc:
            uncertain = (
                op == "create"
                and not dest.native_upsert
                and not self.targets[key(dest)].unique_by_external_id
            )
            self.observer.batch_failed(key(dest), op, len(rows), exc)
            self._retry_later(report, rows, exc, keep_inflight=uncertain)
            self._strike(dest, exc)
            return
        except TransientError as exc:
            self.observer.batch_failed(key(dest), op, len(rows), exc)
            self._retry_later(report, rows, exc, keep_inflight=False)
            self._strike(dest, exc)
            return
        except TerminalError:
            self.store.record([transitions.not_sent(r.id) for r in rows])
            raise
        with self._strikes_lock:
            self._strikes[key(dest)] = 0  # it answered
        self.observer.batch_sent(key(dest), op, results)
        self._record(report, dest, op, rows, results)

    def _strike(self, dest: Destination, exc: TransientError) -> None:
        with self._strikes_lock:
            self._strikes[key(dest)] += 1
            down = self._strikes[key(dest)] == DOWN_AFTER
        if down:
            log.warning(
                "%s: %d batches in a row failed (%s); the rest wait for a later run",
                key(dest),
                DOWN_AFTER,
                exc,
            )

    def _down(self, dest: Destination) -> bool:
        return self._strikes[key(dest)] >= DOWN_AFTER

    def _retry_later(
        self,
        report: RunReport,
        rows: Sequence[WorkRow],
        exc: TransientError,
        *,
        keep_inflight: bool,
    ) -> None:
        code = exc.code or (f"HTTP_{exc.status}" if exc.status else "TRANSIENT")
        self.store.record(
            [
                transitions.failed(
                    sent(row),
                    code=code,
                    message=str(exc),
                    next_attempt_at=self._next_attempt(row.attempts + 1, exc.retry_after),
                    uncertain_create=keep_inflight,
                )
                for row in rows
            ]
        )
        report.counts["retrying"] += len(rows)
        log.warning("%d rows will be retried: %s", len(rows), exc)

    def _next_attempt(self, attempts: int, retry_after: float | None) -> datetime:
        step = min(
            self.options.retry_max_seconds,
            self.options.retry_base_seconds * 2 ** min(attempts - 1, 16),
        )
        delay = max(step * (0.5 + self.rng() / 2), retry_after or 0.0)
        return self.clock() + timedelta(seconds=delay)

    def _record(
        self,
        report: RunReport,
        dest: Destination,
        op: str,
        rows: Sequence[WorkRow],
        results: Sequence[ItemResult],
    ) -> None:
        by_id = {r.external_id: r for r in rows}
        changes: list[transitions.Change] = []
        duplicates: list[tuple[WorkRow, ItemResult]] = []
        clashed: list[WorkRow] = []
        answered = {res.external_id for res in results}
        done = {"create": "created", "update": "updated", "delete": "deleted"}[op]
        for res in results:
            row = by_id.get(res.external_id)
            if row is None:
                continue
            was = sent(row)
            if res.outcome is Outcome.OK:
                report.counts[done] += 1
                changes.append(
                    transitions.removed(was)
                    if op == "delete"
                    else transitions.created(was, res.record_id, row.record_id)
                )
            elif res.outcome is Outcome.NOT_FOUND:
                # Removed in the dialer by hand: create it again (or, for a delete, done).
                if op == "delete":
                    report.counts["deleted"] += 1
                    changes.append(transitions.removed(was))
                else:
                    changes.append(transitions.vanished(was))
            elif res.outcome is Outcome.DUPLICATE and op == "update":
                clashed.append(row)
            elif res.outcome is Outcome.DUPLICATE:
                duplicates.append((row, res))
            elif res.outcome in (Outcome.UNKNOWN, Outcome.TRANSIENT) or op == "delete":
                # A removal is never terminal: a contact that must not be called stays in the
                # list until the dialer lets it go, so a refused delete is retried with backoff
                # (and shown by `dialsync errors` and the failing-removals metric meanwhile).
                code = res.code or ("UNKNOWN" if res.outcome is Outcome.UNKNOWN else "TRANSIENT")
                if op == "delete" and res.outcome is Outcome.REJECTED:
                    code = res.code or "DELETE_FAILED"
                    log.error(
                        "%s: a record that must not be called could not be removed (%s); retrying",
                        key(dest),
                        code,
                    )
                changes.append(self._failed(row, code, res.message, res.outcome, op))
                report.counts["retrying"] += 1
            else:
                changes.append(transitions.rejected(was, code=res.code, message=res.message))
                report.counts["rejected"] += 1
        for row in rows:
            if row.external_id not in answered:
                changes.append(self._failed(row, "UNKNOWN", None, Outcome.UNKNOWN, op))
                report.counts["retrying"] += 1
        self.store.record(changes)
        if op != "create" and any(res.outcome is Outcome.OK for res in results):
            # a record changed or went: it may have held what refused a blocked row
            self.store.unblock(dest.name, dest.target)
        if clashed:
            self._recreate(report, dest, clashed)
        if duplicates:
            self._resolve_duplicates(report, dest, duplicates)

    def _recreate(self, report: RunReport, dest: Destination, rows: Sequence[WorkRow]) -> None:
        """Updates refused because another record holds the new phone number. The old record
        is stale (a number the contact no longer has), and when two contacts swap numbers each
        is refused by the other's old record on every retry: removing the stale records and
        creating them anew breaks that cycle (a create still refused is then blocked)."""
        try:
            results = dest.delete_records([str(r.record_id) for r in rows])
        except TransientError as exc:
            log.warning("%s: stale records not removed yet: %s", key(dest), exc)
            results = []
        gone = {res.record_id for res in results if res.outcome is Outcome.OK}
        self.store.record(
            [
                transitions.recreate(sent(row))
                if row.record_id in gone
                else self._blocked(row, "PHONE_NUMBER_NOT_UNIQUE")
                for row in rows
            ]
        )
        if gone:
            self.store.unblock(dest.name, dest.target)
        report.counts["retrying"] += len(rows) - len(gone)

    def _blocked(self, row: WorkRow, code: str | None) -> transitions.Change:
        return transitions.blocked(
            sent(row),
            code=code,
            message="the dialer holds another record with this external id or phone number",
            next_attempt_at=self._next_attempt(17, None),  # the slow end of the backoff
        )

    def _failed(
        self, row: WorkRow, code: str, message: str | None, outcome: Outcome, op: str
    ) -> transitions.Change:
        return transitions.failed(
            sent(row),
            code=code,
            message=message,
            next_attempt_at=self._next_attempt(row.attempts + 1, None),
            uncertain_create=op == "create" and outcome is Outcome.UNKNOWN,
        )

    def _resolve_duplicates(
        self, report: RunReport, dest: Destination, duplicates: list[tuple[WorkRow, ItemResult]]
    ) -> None:
        """A create clashed: the record may be ours (a lost answer, a lost table): adopt it.

        The rows stay claimed until they are settled: released earlier, another push (a thread,
        a worker) would send the same create again while the scan runs.
        """
        with self._scan_lock:  # pushes run in threads: one scan per run is enough
            if key(dest) not in self._scanned:
                self._scan(report, dest)
        ids = self.store.record_ids(dest.name, dest.target, [r.external_id for r, _ in duplicates])
        changes = [
            transitions.released(row.id)  # adopted: to be sent as an update
            if ids.get(row.external_id)
            else self._blocked(row, res.code)
            for row, res in duplicates
        ]
        report.counts["rejected"] += sum(1 for row, _ in duplicates if not ids.get(row.external_id))
        self.store.record(changes)

    def _push_orphans(self, dest: Destination) -> None:
        while orphans := self.store.orphans(dest.name, dest.target, dest.max_batch):
            try:
                results = dest.delete_records([rid for _, rid in orphans])
            except TransientError as exc:
                log.warning("%s: duplicate records not removed yet: %s", dest.name, exc)
                return
            done = {res.record_id for res in results if res.outcome is Outcome.OK}
            self.store.drop_orphans([oid for oid, rid in orphans if rid in done])
            if done:
                self.store.unblock(dest.name, dest.target)
            if len(done) < len(orphans):
                log.warning(
                    "%s: %d duplicate records could not be removed",
                    dest.name,
                    len(orphans) - len(done),
                )
                return
