"""The pull: contacts read from the source become desired rows in the sync table.

A window of changed contacts is read page by page; each page is mapped, rendered per
destination and decided against the table in one transaction, and only then does the cursor
move past it. Deletes come from the source's delete log; contacts re-read by Id (a sweep, a
resync, records a scan found) go through the same decision. The pull never sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from dialsync.destinations.base import Destination
from dialsync.engine.context import RunContext, canonical, chunked, key, log
from dialsync.models import DialerRecord, Skip, SkipReason, SourceContact
from dialsync.rowstate.decide import Desired, Verdict
from dialsync.store.protocol import Cursor

PULL_BATCH = 2000  # one Salesforce page: a batch is durable before the next page is read


def read_window(
    ctx: RunContext,
    cursor: Cursor,
    start: datetime | None,
    end: datetime,
    scope: set[str] | None,
    *,
    force: bool,
    dry_run: bool,
    after_batch: Callable[[], None],
) -> None:
    """Read [start, end] into the table; the cursor moves after each durable batch."""
    report = ctx.report
    high = cursor.modstamp
    for batch in chunked(ctx.source.window(ctx.fields, start, end), PULL_BATCH):
        report.counts["queried"] += len(batch)
        ingest(ctx, batch, scope, force=force, dry_run=dry_run)
        ctx.observer.batch_pulled(report, len(batch))
        if dry_run:
            continue
        last = batch[-1]
        if high is None or last.system_modstamp >= high:
            high = last.system_modstamp
            ctx.store.move_cursor(ctx.cursor_name, modstamp=high, last_id=last.id)
        after_batch()


def ingest(
    ctx: RunContext,
    contacts: Sequence[SourceContact],
    scope: set[str] | None,
    *,
    force: bool,
    dry_run: bool = False,
) -> None:
    """Map each contact once, then decide per destination what its list must hold."""
    mapping = ctx.view.mapping
    assert mapping is not None
    mapped: list[tuple[SourceContact, DialerRecord | Skip]] = []
    for contact in contacts:
        if scope is not None and not contact.is_deleted and contact.id not in scope:
            result: DialerRecord | Skip = Skip(
                reason=SkipReason.OUT_OF_SCOPE,
                message="outside DIALSYNC_SALESFORCE__SOQL_WHERE",
            )
        else:
            result = ctx.options.mapper(contact, mapping)
        mapped.append((contact, result))
    route = ctx.options.route
    for dest in ctx.destinations:
        remap = key(dest) in ctx.remapped  # re-render even a contact seen already
        wants = []
        for contact, result in mapped:
            if isinstance(result, DialerRecord) and route and not route(contact, result, dest):
                result = Skip(reason=SkipReason.ROUTED_ELSEWHERE, message="routed to another list")
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
        decide(ctx, dest, wants, dry_run)


def decide(ctx: RunContext, dest: Destination, wants: Sequence[Desired], dry_run: bool) -> None:
    """The decision: what the table wants of each contact in this list, counted."""
    report = ctx.report
    each = ctx.rows(dest).apply(wants, report.run_id, dry_run=dry_run, mark_seen=ctx.full_pass)
    ctx.observer.decided(key(dest), list(zip(wants, each, strict=True)))
    verdicts = Counter(each)
    # WAITING rows are queued (a backoff, a create whose answer was lost): not unchanged.
    report.counts["unchanged"] += verdicts[Verdict.UNCHANGED]
    report.counts["retrying"] += verdicts[Verdict.WAITING]
    report.counts["skipped"] += verdicts[Verdict.SKIP]
    if dry_run:
        report.counts["created"] += verdicts[Verdict.CREATE]
        report.counts["updated"] += verdicts[Verdict.UPDATE]
        report.counts["deleted"] += verdicts[Verdict.DELETE]


def absent(
    ctx: RunContext,
    ids: Sequence[str],
    reason: SkipReason,
    message: str,
    gone_at: Mapping[str, datetime] | None = None,
) -> None:
    """These contacts must not be in any list (deleted, gone from the source); ``gone_at``:
    when the source says each went (its delete log), where it says."""
    when = gone_at or {}
    for dest in ctx.destinations:
        maybe = ctx.rows(dest).ids_maybe_in_dialer(ids)
        if maybe:
            wants = [
                Desired(
                    i,
                    None,
                    False,
                    reason_code=reason.value,
                    reason_message=message,
                    gone_at=when.get(i),
                )
                for i in maybe
            ]
            decide(ctx, dest, wants, False)


def confirm(
    ctx: RunContext,
    ids: list[str],
    *,
    force: bool,
    after_batch: Callable[[list[SourceContact]], None] | None = None,
) -> list[str]:
    """Re-read these contacts by Id: those the source returns are decided as any pulled
    contact, the others are gone (returned). SOQL_WHERE is asked now, of these Ids only: no
    window may read them again, and an edit may have moved one in or out of it."""
    valid = [i for i in ids if ctx.source.is_valid_id(i)]
    scope = ctx.source.in_scope(valid) if ctx.options.scoped else None
    seen: set[str] = set()
    for batch in chunked(ctx.source.by_ids(ctx.fields, valid), PULL_BATCH):
        seen.update(c.id for c in batch)
        ingest(ctx, batch, scope, force=force)
        if after_batch is not None:
            after_batch(batch)
    gone = [i for i in ids if i not in seen]
    if gone:
        log.info("%d records have no contact in Salesforce any more", len(gone))
        absent(ctx, gone, SkipReason.NOT_IN_SALESFORCE, "no such contact in Salesforce")
    return gone


def read_deletes(ctx: RunContext, since: datetime, end: datetime) -> bool:
    """Contacts the source's delete log names are removed. Answers True when deletes may
    have been missed (the log no longer reaches back far enough): Ids must be reconciled."""
    start = since - ctx.options.lookback
    if start < ctx.clock() - ctx.source.deleted_reach + timedelta(minutes=5):
        return True
    window = ctx.source.deleted(start, end)
    if window.ids:
        absent(ctx, window.ids, SkipReason.DELETED, "deleted in Salesforce", window.deleted_at)
    earliest = window.earliest_available
    ctx.store.deletes_read(ctx.cursor_name, until=window.latest_covered or end)
    return earliest is not None and earliest > start
