"""A dialer's answer to one batch, recorded row by row in the table (part of the push).

Each item's outcome becomes a row transition (``rowstate.transitions``); creates refused as
duplicates are held claimed in the context for the frame to adopt; updates refused because
another record holds the new number are removed and created anew.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from dialsync.destinations.base import Destination, ItemResult, Outcome
from dialsync.engine.context import RunContext, key, log, sent
from dialsync.errors import TransientError
from dialsync.rowstate import evidence, transitions
from dialsync.store.protocol import WorkRow

DONE = {"create": "created", "update": "updated", "delete": "deleted"}


def record(
    ctx: RunContext,
    counts: Counter[str],
    dest: Destination,
    op: str,
    rows: Sequence[WorkRow],
    results: Sequence[ItemResult],
) -> None:
    """The answer to one call: every row sent gets exactly one transition."""
    by_id = {r.external_id: r for r in rows}
    changes: list[transitions.Change] = []
    duplicates: list[tuple[WorkRow, ItemResult]] = []
    clashed: list[WorkRow] = []
    answered = {res.external_id for res in results}
    for res in results:
        row = by_id.get(res.external_id)
        if row is None:
            continue
        was = sent(row)
        if res.outcome is Outcome.OK:
            counts[DONE[op]] += 1
            changes.append(
                transitions.removed(was)
                if op == "delete"
                else transitions.created(was, res.record_id, row.record_id)
            )
        elif res.outcome is Outcome.NOT_FOUND:
            # Removed in the dialer by hand: create it again (or, for a delete, done).
            if op == "delete":
                counts["deleted"] += 1
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
            changes.append(_failed(ctx, dest, row, code, res.message, res.outcome, op))
            counts["retrying"] += 1
        else:
            changes.append(transitions.rejected(was, code=res.code, message=res.message))
            counts["rejected"] += 1
    for row in rows:
        if row.external_id not in answered:
            changes.append(_failed(ctx, dest, row, "UNKNOWN", None, Outcome.UNKNOWN, op))
            counts["retrying"] += 1
    # A record that changed or went may have held what refused a blocked row: those rows are
    # freed in the transaction that records the answers.
    changed = op != "create" and any(res.outcome is Outcome.OK for res in results)
    run_id, now = ctx.report.run_id, ctx.clock()
    answers = evidence.answers(dest.name, dest.target, op, rows, results, run_id, now)
    ctx.rows(dest).record(changes, answers, unblock=changed)
    if clashed:
        _recreate(ctx, counts, dest, clashed)
    if duplicates:
        # Still claimed: adopting them takes a list scan, which the frame runs (see scan.py).
        ctx.hold_duplicates(dest, duplicates)


def _recreate(
    ctx: RunContext, counts: Counter[str], dest: Destination, rows: Sequence[WorkRow]
) -> None:
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
    ctx.rows(dest).record(
        [
            transitions.recreate(sent(row))
            if row.record_id in gone
            else ctx.blocked(row, "PHONE_NUMBER_NOT_UNIQUE")
            for row in rows
        ],
        unblock=bool(gone),
    )
    counts["retrying"] += len(rows) - len(gone)


def _failed(
    ctx: RunContext,
    dest: Destination,
    row: WorkRow,
    code: str,
    message: str | None,
    outcome: Outcome,
    op: str,
) -> transitions.Change:
    return transitions.failed(
        sent(row),
        code=code,
        message=message,
        next_attempt_at=ctx.next_attempt(row.attempts + 1, None),
        uncertain_create=op == "create"
        and outcome is Outcome.UNKNOWN
        and ctx.resend_may_duplicate(dest),
    )
