"""The push: due rows are claimed, sent to their dialer in batches, and the answers recorded.

Rows are claimed before they are sent, so threads and workers never send one twice; a create
is marked in flight (committed) before its call, so a lost answer is settled by a list scan
before it is sent again. One poison record never sinks its batch: a refused batch is halved
until the record is found. Batches that fail whole, twice in a row, mark the dialer down for
the rest of the run. The push reads and writes the table and the dialers, nothing else: it
never scans a list and never talks to the source (what needs either waits in the context).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from dialsync.destinations.base import Destination, ItemResult, Outcome, WriteItem
from dialsync.engine import outcome
from dialsync.engine.context import LEASE_SECONDS, OPS, RunContext, key, log, sent
from dialsync.errors import AmbiguousWriteError, RecordRejected, TerminalError, TransientError
from dialsync.rowstate import evidence, transitions
from dialsync.store.protocol import WorkRow


def settle_noops(ctx: RunContext, dest: Destination) -> None:
    """Rows that need no call (already as wanted) are settled in the table."""
    rows = ctx.rows(dest)
    while claimed := rows.claim("noop", 500, LEASE_SECONDS):
        gone = evidence.never_created(dest.name, dest.target, claimed, ctx.clock())
        rows.record([transitions.noop_settled(sent(r)) for r in claimed], gone)


def drain_all(
    ctx: RunContext, dest: Destination, *, final: bool, deadline: float | None
) -> Counter[str]:
    """Every op in turn, in ``options.push_threads`` threads: dialer round trips dominate a
    push, and rows are claimed, so several calls in flight never send one row twice (the
    rate limiter still spaces them)."""
    counts: Counter[str] = Counter()
    threads = ctx.options.push_threads
    for op in OPS:
        if threads <= 1:
            counts.update(drain(ctx, dest, op, final=final, deadline=deadline))
            continue
        with ThreadPoolExecutor(threads, thread_name_prefix=f"push-{op}") as pool:
            futures = [
                pool.submit(drain, ctx, dest, op, final=final, deadline=deadline)
                for _ in range(threads)
            ]
            for future in futures:
                counts.update(future.result())
    return counts


def drain(
    ctx: RunContext, dest: Destination, op: str, *, final: bool, deadline: float | None
) -> Counter[str]:
    """Claim and send batches of one op until none is due (``final``: partial ones too).
    Counts go to a counter of its own (merged by the caller): threads never share one."""
    counts: Counter[str] = Counter()
    rows = ctx.rows(dest)
    limit = dest.capabilities.max_batch
    while deadline is None or time.monotonic() < deadline:
        if ctx.down(dest):
            break
        # Only this op's due rows: a full batch of another op would be claimed and released.
        if not final and rows.count_due(op) < limit:
            break
        claimed = rows.claim(op, limit, LEASE_SECONDS)
        if not claimed:
            break
        if not final and len(claimed) < limit:
            rows.record([transitions.released(r.id) for r in claimed])
            break
        send(ctx, counts, dest, op, claimed)
    return counts


def send_claimed(ctx: RunContext, dest: Destination) -> Counter[str]:
    """After a list scan settled uncertain creates: everything due, in this thread."""
    counts: Counter[str] = Counter()
    rows = ctx.rows(dest)
    for op in OPS:
        while not ctx.down(dest) and (
            claimed := rows.claim(op, dest.capabilities.max_batch, LEASE_SECONDS)
        ):
            send(ctx, counts, dest, op, claimed)
    return counts


@contextlib.contextmanager
def in_background(ctx: RunContext, *, enabled: bool) -> Iterator[Callable[[], None]]:
    """While the main thread pulls and maps, threads send every full batch that is due.

    Yields a function to call when new rows were recorded. On exit the threads finish the
    batches they hold and stop; the caller's final push sends the partial ones. An error in
    a thread is raised here, after the others stopped.
    """
    threads = ctx.options.push_threads
    if not (enabled and ctx.pushing and threads > 1):
        yield lambda: None
        return
    wake, done = threading.Event(), threading.Event()
    totals: list[Counter[str]] = []
    errors: list[BaseException] = []

    def loop() -> None:
        local: Counter[str] = Counter()

        def full_batches(dest: Destination) -> None:
            for op in OPS:
                local.update(drain(ctx, dest, op, final=False, deadline=None))

        try:
            while not done.is_set():
                ctx.each(full_batches)
                wake.wait(0.5)
                wake.clear()
        except BaseException as exc:
            errors.append(exc)
            done.set()
        totals.append(local)

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
        for local in totals:
            ctx.report.counts.update(local)
    if errors:
        raise errors[0]


def send(
    ctx: RunContext, counts: Counter[str], dest: Destination, op: str, rows: Sequence[WorkRow]
) -> None:
    """One dialer call for these claimed rows; its answer (or failure) is recorded."""
    items = [WriteItem(r.external_id, r.record_id, r.payload) for r in rows]
    upsert = dest.capabilities.native_upsert
    run_id = ctx.report.run_id
    sending = evidence.sent(dest.name, dest.target, op, rows, run_id, ctx.clock())
    if op == "create" and not upsert:
        ctx.store.set_inflight([r.id for r in rows], "create", sending)  # with its evidence
    else:
        ctx.store.record_evidence(sending)
    try:
        call = {"create": dest.create, "update": dest.update, "delete": dest.delete}[op]
        results = call(items)
    except RecordRejected as exc:
        if len(rows) > 1:  # one poison record must not sink its batch: halve and retry
            half = len(rows) // 2
            send(ctx, counts, dest, op, rows[:half])
            send(ctx, counts, dest, op, rows[half:])
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
        uncertain = op == "create" and ctx.resend_may_duplicate(dest)
        ctx.observer.batch_failed(key(dest), op, len(rows), exc)
        retry_later(ctx, counts, dest, op, rows, exc, keep_inflight=uncertain)
        ctx.strike(dest, exc)
        return
    except TransientError as exc:
        ctx.observer.batch_failed(key(dest), op, len(rows), exc)
        retry_later(ctx, counts, dest, op, rows, exc, keep_inflight=False)
        ctx.strike(dest, exc)
        return
    except TerminalError as exc:
        ids, code = [r.external_id for r in rows], exc.code or "TERMINAL"
        failed = evidence.failed(dest.name, dest.target, op, ids, code, run_id, ctx.clock())
        ctx.rows(dest).record([transitions.not_sent(r.id) for r in rows], failed)
        raise
    ctx.answered(dest)
    ctx.observer.batch_sent(key(dest), op, results)
    outcome.record(ctx, counts, dest, op, rows, results)


def retry_later(
    ctx: RunContext,
    counts: Counter[str],
    dest: Destination,
    op: str,
    rows: Sequence[WorkRow],
    exc: TransientError,
    *,
    keep_inflight: bool,
) -> None:
    code = exc.code or (f"HTTP_{exc.status}" if exc.status else "TRANSIENT")
    ids, run_id = [r.external_id for r in rows], ctx.report.run_id
    ctx.rows(dest).record(
        [
            transitions.failed(
                sent(row),
                code=code,
                message=str(exc),
                next_attempt_at=ctx.next_attempt(row.attempts + 1, exc.retry_after),
                uncertain_create=keep_inflight,
            )
            for row in rows
        ],
        evidence.failed(dest.name, dest.target, op, ids, code, run_id, ctx.clock()),
    )
    counts["retrying"] += len(rows)
    log.warning("%d rows will be retried: %s", len(rows), exc)


def remove_orphans(ctx: RunContext, dest: Destination) -> None:
    """Records of ours the dialer holds twice: the extra ones are removed."""
    rows = ctx.rows(dest)
    while orphans := rows.orphans(dest.capabilities.max_batch):
        try:
            results = dest.delete_records([rid for _, rid in orphans])
        except TransientError as exc:
            log.warning("%s: duplicate records not removed yet: %s", dest.name, exc)
            return
        done = {res.record_id for res in results if res.outcome is Outcome.OK}
        rows.drop_orphans([oid for oid, rid in orphans if rid in done], unblock=bool(done))
        if len(done) < len(orphans):
            log.warning(
                "%s: %d duplicate records could not be removed",
                dest.name,
                len(orphans) - len(done),
            )
            return
