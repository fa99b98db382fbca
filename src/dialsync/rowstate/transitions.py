"""The sync row's state machine: every transition is a pure function of (row, event) -> Change.

``decide.py`` says *what* a pulled contact implies; this module says how each event moves the
row's columns, and under which condition. A push's answer describes the payload that was
sent, so it is recorded compare-and-set: only while the row still holds the desired state and
payload that were sent. When the row moved on meanwhile (a newer pull, another worker), only
the facts about the dialer are kept (the record id, what it now holds) and the row stays due,
so the newer state is sent next. No I/O here: the store applies Changes, the engine builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dialsync.rowstate.decide import Desired, RowState, Status, Verdict


@dataclass(frozen=True)
class Sent:
    """What a claimed row held when it was sent: the compare-and-set condition of its answer."""

    id: int
    desired: str
    payload_hash: str | None
    attempts: int


@dataclass(frozen=True)
class Change:
    """Columns to set on one row.

    ``expect``: set ``values`` only if the row still holds that desired state and payload;
    otherwise set ``otherwise`` (None: leave the row as it is, only release its claim).
    Without ``expect`` the values are set unconditionally. Every change releases the claim.
    """

    id: int
    values: dict[str, Any] = field(default_factory=dict)
    expect: Sent | None = None
    otherwise: dict[str, Any] | None = None


# Statuses at rest (not due). A row at rest must agree with what the dialer holds:
#   synced            desired present, a record id, and the dialer holds the payload
#   skipped, removed  no record id and no create in flight
#   rejected          the dialer refused the payload (retried when the contact changes)
# A row that breaks this is due again (store._unsettle, after each pull, in SQL).
#   blocked           as rejected, refused because of another record; due again at its
#                     (slow) next attempt, or as soon as a record of the list changes
AT_REST = (Status.SYNCED, Status.SKIPPED, Status.REMOVED, Status.REJECTED, Status.BLOCKED)

_STILL_DUE = {"status": Status.PENDING, "next_attempt_at": None}


# -- the push side ---------------------------------------------------------------------------
def released(row_id: int) -> Change:
    """Claimed but not sent (a partial batch, an adopted duplicate): free it as it is."""
    return Change(row_id)


def not_sent(row_id: int) -> Change:
    """The call failed terminally before anything was applied."""
    return Change(row_id, {"inflight": None})


def created(row: Sent, record_id: str | None, old_record_id: str | None) -> Change:
    """A create or update answered OK: the dialer holds the payload that was sent."""
    held = {"record_id": record_id or old_record_id, "sent_hash": row.payload_hash}
    return Change(
        row.id,
        {
            **held,
            "status": Status.SYNCED,
            "inflight": None,
            "attempts": 0,
            "reason_code": None,
            "reason_message": None,
            "next_attempt_at": None,
        },
        expect=row,
        otherwise={**held, **_STILL_DUE, "inflight": None, "attempts": 0},
    )


def removed(row: Sent) -> Change:
    """A delete answered OK (or found nothing to delete): the dialer holds no record."""
    gone = {"record_id": None, "sent_hash": None, "inflight": None, "attempts": 0}
    return Change(
        row.id,
        {**gone, "status": Status.REMOVED, "next_attempt_at": None},
        expect=row,
        otherwise={**gone, **_STILL_DUE},
    )


def vanished(row: Sent) -> Change:
    """An update found no record (removed in the dialer by hand): create it again."""
    return Change(row.id, {"record_id": None, "sent_hash": None, "inflight": None, **_STILL_DUE})


def failed(
    row: Sent,
    *,
    code: str,
    message: str | None,
    next_attempt_at: datetime,
    uncertain_create: bool,
) -> Change:
    """Not applied, or not known to be: try again after a backoff. An uncertain create keeps
    its in-flight mark, so it is settled by a list scan before being sent again."""
    inflight = "create" if uncertain_create else None
    return Change(
        row.id,
        {
            "status": Status.RETRYING,
            "attempts": row.attempts + 1,
            "next_attempt_at": next_attempt_at,
            "reason_code": code,
            "reason_message": (message or None) and message[:500],
            "inflight": inflight,
        },
        expect=row,
        otherwise={"inflight": inflight},
    )


def rejected(row: Sent, *, code: str | None, message: str) -> Change:
    """The dialer refused this payload; retried when the contact changes."""
    return _refused(row, Status.REJECTED, code, message, None)


def blocked(row: Sent, *, code: str | None, message: str, next_attempt_at: datetime) -> Change:
    """Refused because another record holds its phone number or external id. Not terminal:
    the holder may change number, opt out or go; see SyncStore.unblock."""
    return _refused(row, Status.BLOCKED, code, message, next_attempt_at)


def _refused(
    row: Sent, status: Status, code: str | None, message: str, next_attempt_at: datetime | None
) -> Change:
    return Change(
        row.id,
        {
            "status": status,
            "inflight": None,
            "attempts": row.attempts + 1,
            "reason_code": code or "OTHER",
            "reason_message": message[:500] or None,
            "next_attempt_at": next_attempt_at,
        },
        expect=row,
        otherwise={"inflight": None},
    )


def recreate(row: Sent) -> Change:
    """Its stale record was deleted to break a clash (two contacts swapping numbers, each
    refused by the other's old record): create it anew."""
    return Change(
        row.id,
        {"record_id": None, "sent_hash": None, "inflight": None, "attempts": 0, **_STILL_DUE},
    )


def noop_settled(row: Sent) -> Change:
    """Must not be called and the dialer never held it: nothing to send."""
    return Change(row.id, {"status": Status.SKIPPED, "inflight": None}, expect=row)


# -- the pull side ---------------------------------------------------------------------------
def reread(verdict: Verdict, row: RowState, want: Desired) -> bool:
    """A lookback re-read that changes nothing in the row (only a full pass's seen mark)."""
    return (
        verdict in (Verdict.UNCHANGED, Verdict.WAITING)
        and not want.force
        and want.modstamp is not None
        and row.source_modstamp == want.modstamp
    )


def pulled(
    verdict: Verdict, row: RowState | None, want: Desired, run_id: int | None, now: datetime
) -> dict[str, Any]:
    """The columns a pulled desired state sets (``decide()`` gave the verdict)."""
    values: dict[str, Any] = {"updated_at": now, "last_seen_run": run_id}
    if want.modstamp is not None:
        values["source_modstamp"] = want.modstamp
    if verdict is Verdict.WAITING:
        return values
    if verdict is Verdict.UNCHANGED:
        if (
            row is not None
            and row.source_modstamp == want.modstamp
            and not want.force
            and (not want.remap or row.payload_hash == want.payload_hash)
        ):
            return values  # a lookback re-read (or a re-render to the same payload): as it is
        values.update(
            status=Status.SYNCED if want.present else row.status if row else Status.SKIPPED,
            desired="present" if want.present else "absent",
            payload=want.payload,
            payload_hash=want.payload_hash,
            reason_code=None if want.present else want.reason_code,
            reason_message=None if want.present else want.reason_message,
            next_attempt_at=None,
            attempts=0,
        )
        return values
    values.update(
        desired="present" if want.present else "absent",
        payload=want.payload,
        payload_hash=want.payload_hash,
        next_attempt_at=None,
        attempts=0,
        reason_code=want.reason_code,
        reason_message=want.reason_message,
    )
    if want.force:
        values["sent_hash"] = None
    if verdict is Verdict.SKIP:
        removed_before = row is not None and row.status == Status.REMOVED
        values["status"] = Status.REMOVED if removed_before else Status.SKIPPED
    else:
        values["status"] = Status.PENDING
    return values
