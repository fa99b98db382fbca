"""The history table written: one row per event of a contact (see tables.history), in the
transaction of the row change it describes, many rows per statement.

The events are built by ``dialsync.rowstate.evidence`` (pure, so the engine builds what it
sent and what the dialer answered without touching the database); this module inserts them,
and builds those only the store can see: what a pull changed and decided, and what a scan
found gone. It also reads a contact's history back and prunes it past its retention.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from dialsync.rowstate.decide import Desired, RowState, Verdict
from dialsync.rowstate.evidence import DECISIONS, Evidence, event, field_names
from dialsync.rowstate.evidence import confirmed_absent as absent_events
from dialsync.store import optouts, runs
from dialsync.store.database import Database, chunks
from dialsync.store.tables import history, sync_records

log = logging.getLogger(__name__)
H = history.c


# -- the pull ----------------------------------------------------------------------------------
# One pulled contact as ``rows.apply`` decided it: what it wants, its row before, the verdict.
Decided = tuple[Desired, RowState | None, Verdict]


def record_pull(
    conn: Connection,
    destination: str,
    list_id: str,
    decided: Sequence[Decided],
    run_id: int | None,
    now: datetime,
) -> None:
    """In the pull's transaction, before its writes: a contact read with a new stamp (or
    re-rendered, or resent) is "pulled" (which fields of its record changed) and "decided".
    ``decided`` holds only those: ``rows.apply`` leaves out a lookback or full-pass re-read
    that changes nothing, which leaves no trace."""
    changed = [
        row.id
        for want, row, _ in decided
        if row is not None and want.present and row.payload_hash != want.payload_hash
    ]
    # The old payloads of the rows whose payload changes, and only those: the decision reads
    # hashes, and reading every payload of a re-read batch would cost far more than this.
    before = _payloads(conn, changed)
    events: list[dict[str, Any]] = []
    for want, row, verdict in decided:
        at = (destination, list_id, want.external_id)
        if want.modstamp is not None:
            old = before.get(row.id) if row is not None else None
            same = row is not None and row.payload_hash == want.payload_hash
            fields = [] if same else field_names(old, want.payload)
            events.append(
                event(*at, "pulled", now, run_id, stamp=want.modstamp, detail={"fields": fields})
            )
        events.append(
            event(
                *at,
                "decided",
                now,
                run_id,
                outcome=DECISIONS[verdict],
                reason=None if want.present else want.reason_code,
                # a contact known gone without a stamp: when the delete log says it went
                # (getDeleted's deletedDate), else now (a reconciliation cannot tell)
                stamp=want.modstamp or want.gone_at or now,
            )
        )
    insert_events(conn, events)


def _payloads(conn: Connection, row_ids: Sequence[int]) -> dict[int, str | None]:
    R = sync_records.c
    found: dict[int, str | None] = {}
    for part in chunks(row_ids):
        query = select(R.id, R.payload).where(R.id.in_(part))
        found.update({r.id: r.payload for r in conn.execute(query)})
    return found


# -- a scan ------------------------------------------------------------------------------------
def confirmed_absent(
    conn: Connection,
    destination: str,
    list_id: str,
    contact_ids: Sequence[str],
    now: datetime,
    why: str = "scan",
) -> None:
    """In the scan's transaction: records that must not be called, not found in the list."""
    insert_events(conn, absent_events(destination, list_id, contact_ids, now, why))


# -- writing -----------------------------------------------------------------------------------
def insert_events(conn: Connection, events: Evidence) -> None:
    """Many rows per statement. Removals of opt-outs are timed for the listeners first."""
    if not events:
        return
    if optouts.listening():
        optouts.time_removals(conn, events)
    conn.execute(insert(history), list(events))


# -- reading and pruning -----------------------------------------------------------------------
def for_contact(db: Database, contact_id: str) -> list[dict[str, Any]]:
    """Every event of one contact, oldest first."""
    query = select(history).where(H.contact_id == contact_id).order_by(H.at, H.id)
    with db.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        row.pop("id")
        row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return rows


PRUNE_STAMP = "compliance:history_pruned"
PRUNE_EVERY = timedelta(days=1)


def prune(db: Database, before: datetime) -> int:
    """Drop the events older than ``before``; how many."""
    with db.tx() as conn:
        return int(conn.execute(delete(history).where(H.at < before)).rowcount or 0)


def prune_if_due(db: Database, retention_days: int, now: datetime) -> int | None:
    """At most once a day (a stamp in the state database, so every process agrees): drop the
    events older than the retention. None when it was not due."""
    last = runs.get_cursor(db, PRUNE_STAMP).modstamp
    if last is not None and now - last < PRUNE_EVERY:
        return None
    dropped = prune(db, now - timedelta(days=retention_days))
    runs.set_cursor(db, PRUNE_STAMP, {"modstamp": now})
    if dropped:
        log.info("history: %d events older than %d days pruned", dropped, retention_days)
    return dropped
