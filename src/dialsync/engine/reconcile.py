"""Reconciliation: rows whose contact the source no longer has are found and removed.

A full pass marks every row whose contact it read; when the delete log may have missed some
(``pull.read_deletes``), every Id the source holds is listed and its rows marked instead.
Rows left unmarked are re-read by Id before their records are removed, since a contact edited
after the window's end (or created meanwhile) is unseen too.
"""

from __future__ import annotations

from dialsync.engine import pull
from dialsync.engine.context import RunContext, chunked


def reconcile(ctx: RunContext) -> None:
    """Every Id the source holds marks its rows seen; the unseen ones are confirmed."""
    run_id = ctx.report.run_id
    assert run_id is not None
    for ids in chunked(ctx.source.ids(None, scoped=True), pull.PULL_BATCH):
        for dest in ctx.destinations:
            ctx.rows(dest).mark_seen(ids, run_id)
    sweep(ctx)
    ctx.store.reconciled(ctx.cursor_name, at=ctx.clock())
    ctx.report.reconciled = True


def sweep(ctx: RunContext) -> None:
    """Rows a full pass (or the Id listing) did not see: each is re-read by Id, and those the
    source does not return are removed."""
    run_id = ctx.report.run_id
    assert run_id is not None
    unseen: set[str] = set()
    for dest in ctx.destinations:
        unseen.update(ctx.rows(dest).unseen_ids(run_id))
    if unseen:
        ids = sorted(unseen)
        # Their scope is asked of these Ids only (confirm), not taken from the listing the
        # window was read with: a contact unseen by the window was edited after the window's
        # end, or is gone, and an edit may have moved it in or out of SOQL_WHERE. Listing
        # every Id again would answer the same, at the cost of a second full listing.
        pull.confirm(ctx, ids, force=False)
