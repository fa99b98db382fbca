"""List scans and adoption: what the dialer holds is compared with what the table believes.

A scan pages a destination's list: records of ours the table did not know are adopted, rows
whose record was removed by hand are queued again, creates whose answer was lost are settled.
Records whose contact the table has never seen are handed to the frame (``ctx.ask_source``):
a scan only reads the dialer, never the source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

from dialsync.destinations.base import ContentScan, Destination, ItemResult
from dialsync.engine.context import RunContext, canonical, key, log
from dialsync.rowstate import transitions
from dialsync.store.protocol import WorkRow


def prepare(ctx: RunContext, *, force_scan: bool = False) -> None:
    """Before a pull: scan the lists that may hold what the table does not know."""
    ctx.store.release_dead_claims()
    ctx.each(lambda dest: _prepare_one(ctx, dest, force_scan))


def _prepare_one(ctx: RunContext, dest: Destination, force_scan: bool) -> None:
    rows = ctx.rows(dest)
    info = ctx.targets[key(dest)]
    scanned, others = rows.list_others()
    uncertain = rows.uncertain_creates()
    ours = rows.count_in_dialer()
    # A list this table has never seen may hold our records already (a lost state DB,
    # a previous tool); a create whose answer was lost may have happened; a list whose
    # count is not ours plus the other providers' records at the last scan was edited by
    # hand (records of ours removed, maybe while others were added).
    edited = info.records_count is not None and info.records_count != ours + (others or 0)
    if force_scan or uncertain or edited or (not scanned and info.records_count != 0):
        # a forced scan (the full reconciliation) compares every record's content too
        scan(ctx, dest, contents=force_scan)
    elif not scanned:
        rows.set_list_scanned(info.unique_identifier_type, 0)


def scan(ctx: RunContext, dest: Destination, *, contents: bool = False) -> None:
    # Pages are numbered: a record added or removed while the list is paged shifts the
    # pages after it, so a record can be missed. What a scan found is true (adopted), but
    # what it did not find is trusted only when the list's count did not move meanwhile;
    # else it is scanned once more, and if that one overlaps writes too, "not found"
    # concludes nothing this run (a later scan settles it).
    rows = ctx.rows(dest)
    adopted = duplicates = edited = 0
    unknown: list[str] = []
    for _ in range(2):
        before = dest.open().records_count
        started = ctx.clock()
        seen: set[str] = set()
        found, dupes, new, changed = rows.adopt(_noting(dest, seen, contents))
        adopted, duplicates, edited = adopted + found, duplicates + dupes, edited + changed
        unknown += new
        info = ctx.targets[key(dest)] = dest.open()
        trusted = before is None or info.records_count == before
        if trusted:
            break
        log.info("%s: the list changed while it was scanned", key(dest))
    missing = settled = 0
    if trusted:
        # Confirmed absent: rows whose record the list no longer holds.
        missing = rows.forget_missing(seen, started)
        # A create the client gave up on (a timeout) may still land after this scan:
        # only creates sent longer ago than the destination's settle time are taken as
        # never made. A list that refuses a second record with the same external id
        # needs no wait: a create sent again is refused if the first one landed, and
        # that record is adopted.
        grace = timedelta(seconds=dest.capabilities.settle_seconds)
        if info.unique_by_external_id:
            grace = timedelta(0)
        settled = rows.settle_uncertain_creates(started - grace)
    # The list's count, less ours: the other providers' records, against which the
    # next runs' counts tell whether someone edited the list by hand.
    others = (
        None if info.records_count is None else max(0, info.records_count - rows.count_in_dialer())
    )
    rows.set_list_scanned(info.unique_identifier_type, others)
    ctx.scanned.add(key(dest))
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
    if unknown and ctx.store.get_cursor(ctx.cursor_name).modstamp is not None:
        # Records of ours the table did not know: the source says what they should be.
        # (Before the first full pass there is no need: that pass reads them all.)
        ctx.ask_source(unknown)


def adopt_duplicates(
    ctx: RunContext, dest: Destination, duplicates: Sequence[tuple[WorkRow, ItemResult]]
) -> None:
    """Creates the dialer refused as duplicates: the record may be ours (a lost answer, a lost
    table). The list is scanned once per run; a row whose record it adopted is released (to
    be sent as an update), the others are blocked until what holds their key changes.

    The rows stay claimed until this settles them: released earlier, another push (a thread,
    a worker) would send the same create again.
    """
    if key(dest) not in ctx.scanned:
        scan(ctx, dest)
    ids = ctx.rows(dest).record_ids([r.external_id for r, _ in duplicates])
    changes = [
        transitions.released(row.id)  # adopted: to be sent as an update
        if ids.get(row.external_id)
        else ctx.blocked(row, res.code)
        for row, res in duplicates
    ]
    ctx.report.counts["rejected"] += sum(1 for row, _ in duplicates if not ids.get(row.external_id))
    ctx.rows(dest).record(changes)


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
