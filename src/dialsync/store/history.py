"""Evidence per contact: one ``history`` row per event (see tables.history), written in the
transaction of the row change it describes, many rows per statement.

What is kept is what happened, never the data: the names of the fields that changed, the
decision and its reason code, the operation sent, the dialer's answer and its code. No phone
numbers, names or other values. The engine and the store call the builders here; the rows
are inserted by ``insert`` inside their own transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from dialsync.destinations.base import ItemResult, Outcome
from dialsync.store import optouts, transitions
from dialsync.store.decide import Desired, RowState, Verdict, decide
from dialsync.store.tables import history, sync_records

if TYPE_CHECKING:
    from dialsync.store.store import SyncStore

log = logging.getLogger(__name__)
H = history.c
_CHUNK = 500
DECISIONS = {
    Verdict.CREATE: "create",
    Verdict.UPDATE: "update",
    Verdict.DELETE: "remove",
    Verdict.SKIP: "skip",
    Verdict.UNCHANGED: "unchanged",
    Verdict.WAITING: "waiting",
}


class _Sent(Protocol):
    """What the push knows of a row it sent (store.WorkRow)."""

    @property
    def external_id(self) -> str: ...


def _event(
    destination: str,
    list_id: str,
    contact_id: str,
    event: str,
    at: datetime,
    run_id: int | None,
    outcome: str | None = None,
    reason: str | None = None,
    stamp: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "at": at,
        "contact_id": contact_id,
        "destination": destination,
        "list_id": list_id,
        "event": event,
        "outcome": outcome,
        "reason": reason and reason[:64],
        "stamp": stamp,
        "detail": json.dumps(detail, sort_keys=True) if detail else None,
        "run_id": run_id,
    }


# -- the pull ----------------------------------------------------------------------------------
def record_pull(
    conn: Connection,
    destination: str,
    list_id: str,
    existing: Mapping[str, RowState],
    wants: Sequence[Desired],
    run_id: int | None,
    now: datetime,
    dry_run: bool = False,
) -> None:
    """In the pull's transaction, before its writes: a contact read with a new stamp (or
    re-rendered, or resent) is "pulled" (which fields of its record changed) and "decided".
    A lookback or full-pass re-read that changes nothing leaves no trace."""
    if dry_run:
        return
    decided: list[tuple[Desired, RowState | None, Verdict]] = []
    for want in wants:
        row = existing.get(want.external_id)
        verdict = decide(row, want)
        if row is None or not transitions.reread(verdict, row, want):
            decided.append((want, row, verdict))
    changed = [
        row.id
        for want, row, _ in decided
        if row is not None and want.present and row.payload_hash != want.payload_hash
    ]
    before = _payloads(conn, changed)
    events: list[dict[str, Any]] = []
    for want, row, verdict in decided:
        at = (destination, list_id, want.external_id)
        if want.modstamp is not None:
            old = before.get(row.id) if row is not None else None
            same = row is not None and row.payload_hash == want.payload_hash
            fields = [] if same else field_names(old, want.payload)
            events.append(
                _event(*at, "pulled", now, run_id, stamp=want.modstamp, detail={"fields": fields})
            )
        events.append(
            _event(
                *at,
                "decided",
                now,
                run_id,
                outcome=DECISIONS[verdict],
                reason=None if want.present else want.reason_code,
                # a contact known gone without a stamp (getDeleted, a reconciliation): now
                stamp=want.modstamp or now,
            )
        )
    insert_events(conn, events)


def _payloads(conn: Connection, row_ids: Sequence[int]) -> dict[int, str | None]:
    R = sync_records.c
    found: dict[int, str | None] = {}
    for i in range(0, len(row_ids), _CHUNK):
        query = select(R.id, R.payload).where(R.id.in_(row_ids[i : i + _CHUNK]))
        found.update({r.id: r.payload for r in conn.execute(query)})
    return found


def field_names(old: str | None, new: str | None) -> list[str]:
    """The names (never the values) of the record's fields that differ; "*" for a payload
    that is not an object (the whole of it)."""
    if new is None:
        return []
    after: Any = json.loads(new)
    before: Any = json.loads(old) if old else {}
    if not isinstance(after, dict) or not isinstance(before, dict):
        return [] if after == before else ["*"]
    return sorted(k for k in set(after) | set(before) if after.get(k) != before.get(k))


# -- the push ----------------------------------------------------------------------------------
def sent(
    destination: str,
    list_id: str,
    op: str,
    rows: Sequence[_Sent],
    run_id: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Written before the dialer call: a create's with its write-ahead mark, one statement."""
    return [_event(destination, list_id, r.external_id, "sent", now, run_id, op) for r in rows]


def answers(
    destination: str,
    list_id: str,
    op: str,
    rows: Sequence[_Sent],
    results: Sequence[ItemResult],
    run_id: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The dialer's answer per record, recorded with the row changes it causes."""
    by_id = {r.external_id for r in rows}
    out = []
    answered = set()
    for res in results:
        if res.external_id not in by_id:
            continue
        answered.add(res.external_id)
        if res.outcome is Outcome.OK or (res.outcome is Outcome.NOT_FOUND and op == "delete"):
            outcome, code = ("removed" if op == "delete" else "ok"), None
        elif res.outcome is Outcome.NOT_FOUND:
            outcome, code = "not_found", None
        elif res.outcome is Outcome.DUPLICATE:
            outcome, code = "duplicate", res.code
        elif res.outcome is Outcome.REJECTED:
            outcome, code = "rejected", res.code or "OTHER"
        else:
            outcome, code = "failed", res.code or res.outcome.value.upper()
        out.append(
            _event(
                destination,
                list_id,
                res.external_id,
                "answered",
                now,
                run_id,
                outcome,
                code,
                detail={"op": op},
            )
        )
    missing = [r.external_id for r in rows if r.external_id not in answered]
    out += failed(destination, list_id, op, missing, "UNKNOWN", run_id, now)
    return out


def failed(
    destination: str,
    list_id: str,
    op: str,
    contact_ids: Iterable[str],
    code: str,
    run_id: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """A call that failed for the whole batch (or records it did not answer for)."""
    return [
        _event(destination, list_id, c, "answered", now, run_id, "failed", code, detail={"op": op})
        for c in contact_ids
    ]


def confirmed_absent(
    conn: Connection,
    destination: str,
    list_id: str,
    contact_ids: Sequence[str],
    now: datetime,
    why: str = "scan",
) -> None:
    """A record that must not be called is known not to be in the list: a scan did not find
    it, or the create that may have made it was settled as never applied."""
    insert_events(
        conn,
        [_event(destination, list_id, c, "confirmed_absent", now, None, why) for c in contact_ids],
    )


def never_created(
    destination: str, list_id: str, rows: Sequence[_Sent], now: datetime
) -> list[dict[str, Any]]:
    """Must not be called, and the dialer never held it (a create settled as never applied):
    nothing to remove."""
    return [
        _event(destination, list_id, r.external_id, "confirmed_absent", now, None, "never_created")
        for r in rows
    ]


def insert_events(conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
    """Many rows per statement. Removals of opt-outs are timed for the listeners first."""
    if not events:
        return
    if optouts.listening():
        optouts.time_removals(conn, events)
    conn.execute(insert(history), list(events))


# -- reading and pruning -----------------------------------------------------------------------
def for_contact(store: SyncStore, contact_id: str) -> list[dict[str, Any]]:
    """Every event of one contact, oldest first."""
    query = select(history).where(H.contact_id == contact_id).order_by(H.at, H.id)
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        row.pop("id")
        row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return rows


PRUNE_STAMP = "compliance:history_pruned"
PRUNE_EVERY = timedelta(days=1)


def prune(store: SyncStore, before: datetime) -> int:
    """Drop the events older than ``before``; how many."""
    with store._tx() as conn:
        return int(conn.execute(delete(history).where(H.at < before)).rowcount or 0)


def prune_if_due(store: SyncStore, retention_days: int, now: datetime) -> int | None:
    """At most once a day (a stamp in the state database, so every process agrees): drop the
    events older than the retention. None when it was not due."""
    last = store.get_cursor(PRUNE_STAMP).modstamp
    if last is not None and now - last < PRUNE_EVERY:
        return None
    dropped = prune(store, now - timedelta(days=retention_days))
    store.set_cursor(PRUNE_STAMP, modstamp=now)
    if dropped:
        log.info("history: %d events older than %d days pruned", dropped, retention_days)
    return dropped
