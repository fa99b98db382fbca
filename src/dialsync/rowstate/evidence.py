"""Evidence per contact, as data: the events the history table keeps (see tables.history).

Pure: the engine builds these where things happen (what was sent, what the dialer answered)
and hands them to the store with the row changes they describe; the store writes them in the
same transaction (``dialsync.store.history``). What is kept is what happened, never the data:
the names of the fields that changed, the decision and its reason code, the operation sent,
the dialer's answer and its code. No phone numbers, names or other values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from dialsync.destinations.base import ItemResult, Outcome
from dialsync.rowstate.decide import Verdict

# One history row, column by column (the store inserts these as they are).
Event = Mapping[str, Any]
Evidence = Sequence[Event]

DECISIONS = {
    Verdict.CREATE: "create",
    Verdict.UPDATE: "update",
    Verdict.DELETE: "remove",
    Verdict.SKIP: "skip",
    Verdict.UNCHANGED: "unchanged",
    Verdict.WAITING: "waiting",
}


class _Sent(Protocol):
    """What the push knows of a row it sent (``WorkRow``)."""

    @property
    def external_id(self) -> str: ...


def event(
    destination: str,
    list_id: str,
    contact_id: str,
    kind: str,
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
        "event": kind,
        "outcome": outcome,
        "reason": reason and reason[:64],
        "stamp": stamp,
        "detail": json.dumps(detail, sort_keys=True) if detail else None,
        "run_id": run_id,
    }


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
    return [event(destination, list_id, r.external_id, "sent", now, run_id, op) for r in rows]


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
            event(
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
        event(destination, list_id, c, "answered", now, run_id, "failed", code, detail={"op": op})
        for c in contact_ids
    ]


def confirmed_absent(
    destination: str, list_id: str, contact_ids: Iterable[str], now: datetime, why: str
) -> list[dict[str, Any]]:
    """A record that must not be called is known not to be in the list: a scan did not find
    it ("scan"), or the create that may have made it was settled as never applied."""
    return [event(destination, list_id, c, "confirmed_absent", now, None, why) for c in contact_ids]


def never_created(
    destination: str, list_id: str, rows: Sequence[_Sent], now: datetime
) -> list[dict[str, Any]]:
    """Must not be called, and the dialer never held it (a create settled as never applied):
    nothing to remove."""
    ids = [r.external_id for r in rows]
    return confirmed_absent(destination, list_id, ids, now, "never_created")
