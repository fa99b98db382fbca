"""The run frame: the one place that orders a run's steps and the rooms that take them.

The rooms never call each other: the pull (``pull``, ``reconcile``) writes desired rows, the
push (``push``, ``outcome``) sends them, the scan (``scan``) compares lists with the table.
What one room finds for another waits in the ``RunContext`` and the frame hands it over on
the main thread: creates a push met as duplicates go to the scan for adoption, records a scan
did not know go to the source. So a push thread never talks to the source.

Durability order, which is what makes a crash at any point safe:
1. a pulled batch is written to the sync table (desired state) in one transaction;
2. only then the cursor moves to the batch's last modstamp;
3. a create is marked in flight (committed) before the dialer call, and the answer is recorded
   after it; a create whose answer was lost is settled by scanning the list before it is sent
   again, so a crash never duplicates a record.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dialsync.destinations.base import Destination
from dialsync.engine import pull, push, reconcile, scan
from dialsync.engine.context import RunContext, key, log
from dialsync.engine.report import RunReport
from dialsync.errors import DialsyncError, error_kind
from dialsync.mapping import MappingConfig
from dialsync.models import SourceContact

Work = Callable[[RunContext], None]
# How long a run that ends waits for rows another push holds: a batch's round trip, its
# bounded retries and a rate-limit pause fit in it; longer, and the rows count as unsettled.
HELD_WAIT_SECONDS = 120.0
HELD_POLL_SECONDS = 0.25


def run(
    ctx: RunContext, work: Work, *, needs_source: bool = True, await_pushes: bool = True
) -> RunReport:
    """Open, do ``work``, and record how the run ended (its row in the runs table). With
    ``await_pushes``, a pushing run waits for the batches other pushes hold before it counts
    what is unsettled (``await_others``)."""
    report, store = ctx.report, ctx.store
    started = time.monotonic()
    try:
        _open(ctx, needs_source)
        ctx.observer.run_started(report)
        work(ctx)
    except BaseException as exc:
        if report.run_id is not None:
            message = str(exc) if isinstance(exc, DialsyncError) else exc.__class__.__name__
            store.finish_run(
                report.run_id, "failed", report.as_dict(), error=message, error_kind=error_kind(exc)
            )
        ctx.observer.run_finished(report, time.monotonic() - started, "failed")
        raise
    report.failed = {name: str(exc) for name, exc in ctx.failed.items()}
    if report.kind not in ("push", "pull", "plan"):
        if ctx.pushing and await_pushes:
            await_others(ctx)
        report.unsettled = sum(ctx.rows(d).count_unsettled() for d in ctx.live())
    if report.run_id is not None:
        status = "partial" if report.failed else "ok"
        error = "; ".join(report.failed.values()) or None
        kinds = {error_kind(exc) for exc in ctx.failed.values()}
        worst = next((k for k in ("config", "error", "transient") if k in kinds), None)
        store.finish_run(report.run_id, status, report.as_dict(), error=error, error_kind=worst)
    ctx.observer.run_finished(
        report, time.monotonic() - started, "partial" if report.failed else "ok"
    )
    return report


def await_others(ctx: RunContext, *, limit: float = HELD_WAIT_SECONDS) -> None:
    """Before a run says whether its lists converged: rows another push holds (a worker, a
    second run) are being delivered, not unsettled. Wait (bounded) until that push recorded
    its answers, then send what it gave back. Still held after ``limit``: counted unsettled."""
    deadline = time.monotonic() + limit
    waited = False
    while (held := sum(ctx.rows(d).count_held() for d in ctx.live())) and (
        time.monotonic() < deadline
    ):
        if not waited:
            log.info(
                "%d records are being sent by another worker or run: waiting up to %.0f s for "
                "their answers before counting what is unsettled",
                held,
                limit,
            )
            waited = True
        time.sleep(HELD_POLL_SECONDS)
    if waited:
        push_all(ctx, final=True)


def _open(ctx: RunContext, needs_source: bool) -> None:
    view, source = ctx.view, ctx.source
    if needs_source and view.fields is None:
        source.open()
        view.fields = source.available(ctx.options.fields)
        view.mapping = MappingConfig(
            instance_url=(source.instance_url or "").rstrip("/"),
            default_region=ctx.options.default_region,
            priority=ctx.options.priority,
        )
        ctx.mapping_watch.compute(
            ctx.destinations,
            config=view.mapping,
            fields=view.fields,
            mapper=ctx.options.mapper,
            payload_settings=ctx.options.payload_settings,
        )
    # Every run: the target must still exist, and its record count tells whether
    # someone removed records by hand.
    ctx.each(lambda dest: ctx.targets.__setitem__(key(dest), dest.open()))


# -- the cycle: pull a window, then push ----------------------------------------------------
def cycle(ctx: RunContext, *, full: bool, dry_run: bool, force: bool) -> None:
    if not dry_run:
        # A full pass is the two-sided reconciliation: every record of the list is
        # compared with what the table wants (and the pull then re-reads every contact).
        prepare(ctx, force_scan=full)
        for dest in ctx.destinations if full else ():
            ctx.rows(dest).unblock()
            ctx.rows(dest).retry_rejected()
    cursor = ctx.store.get_cursor(ctx.cursor_name)
    ctx.remapped = ctx.mapping_watch.check(synced_before=cursor.modstamp is not None)
    incremental = cursor.modstamp is not None and not full and not ctx.remapped
    # The window's end is fixed now; Salesforce stamps have one-second precision.
    end = ctx.clock().replace(microsecond=0)
    start = cursor.modstamp - ctx.options.lookback if incremental and cursor.modstamp else None
    # The scope of what the window reads (SOQL_WHERE): a full pass's one listing of every Id.
    # The contacts the sweep re-reads are asked about by Id (reconcile.sweep says why).
    scope = set(ctx.source.ids(start)) if ctx.options.scoped else None
    ctx.full_pass = not incremental
    with push.in_background(ctx, enabled=not dry_run) as wake:
        pull.read_window(
            ctx, cursor, start, end, scope, force=force, dry_run=dry_run, after_batch=wake
        )
    if dry_run:
        return
    ctx.each(lambda dest: adopt_held(ctx, dest))  # duplicates the pushing threads met
    ask_source(ctx)
    ctx.mapping_watch.record()  # every contact is rendered with the current mapping
    if incremental and cursor.modstamp is not None:
        lost = pull.read_deletes(ctx, cursor.deleted_until or cursor.modstamp, end)
        if lost or cursor.reconciled_at is None:
            log.warning("deletes may have been missed (or never reconciled): reconciling Ids")
            reconcile.reconcile(ctx)
    else:
        # A full pass saw every live contact: rows it did not see are gone from the source.
        reconcile.sweep(ctx)
        ctx.store.reconciled(ctx.cursor_name, at=end, deletes_until=end)
    push_all(ctx, final=True)


def refresh(ctx: RunContext, ids: list[str], *, force: bool) -> None:
    """Re-read contacts by Id and push them; Ids the source does not return are gone."""
    report = ctx.report
    prepare(ctx)

    def pulled(batch: list[SourceContact]) -> None:
        report.counts["queried"] += len(batch)
        ctx.observer.batch_pulled(report, len(batch))
        push_all(ctx, final=False)

    report.missing = pull.confirm(ctx, ids, force=force, after_batch=pulled)
    push_all(ctx, final=True)


def prepare(ctx: RunContext, *, force_scan: bool = False) -> None:
    """Scan the lists that may hold what the table does not know, then ask the source about
    the records found."""
    scan.prepare(ctx, force_scan=force_scan)
    if ctx.view.fields is not None:
        # What an earlier scan found and no run could ask yet (a push-only run has no source;
        # a crash between the scan and the question): the table keeps them as unverified.
        ctx.each(lambda dest: ctx.ask_source(ctx.rows(dest).unverified_ids()))
    ask_source(ctx)


# -- the push and what it leaves for the frame ------------------------------------------------
def push_all(
    ctx: RunContext, *, final: bool, deadline: float | None = None, scan_uncertain: bool = True
) -> None:
    """Drain due rows op by op in full batches; ``final`` also sends the partial ones."""
    if ctx.pushing:
        ctx.each(lambda dest: _push_one(ctx, dest, final, deadline, scan_uncertain))
        ask_source(ctx)


def _push_one(
    ctx: RunContext,
    dest: Destination,
    final: bool,
    deadline: float | None,
    scan_uncertain: bool,
) -> None:
    push.settle_noops(ctx, dest)
    ctx.report.counts.update(push.drain_all(ctx, dest, final=final, deadline=deadline))
    adopt_held(ctx, dest)
    if final and not ctx.down(dest):
        push.remove_orphans(ctx, dest)
        if scan_uncertain and ctx.rows(dest).uncertain_creates() and key(dest) not in ctx.scanned:
            scan.scan(ctx, dest)
            ask_source(ctx)
            ctx.report.counts.update(push.send_claimed(ctx, dest))
            adopt_held(ctx, dest)


def adopt_held(ctx: RunContext, dest: Destination) -> None:
    """Creates refused as duplicates, held claimed by the push: the scan adopts or blocks."""
    if duplicates := ctx.take_duplicates(dest):
        scan.adopt_duplicates(ctx, dest, duplicates)


def ask_source(ctx: RunContext) -> None:
    """Records a scan found that the table did not know: the source says what each should be.
    On the pull side, in the run's own thread. A push-only run leaves them unverified in the
    table, and the next run that reads the source asks (``prepare``)."""
    ids = ctx.take_unknown()
    if ids and ctx.view.fields is not None:
        # Within SOQL_WHERE (confirm asks it): a record of a contact outside it is removed,
        # not adopted as callable.
        pull.confirm(ctx, ids, force=True)
