"""Opt-outs read from the history: a remove decision for a reason that makes a contact not
callable opens one at a list; the dialer confirming the record gone closes it. The report
(dialsync.compliance) and the latency histogram (dialsync.metrics, through ``listen``) both
pair events this way."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from dialsync.models import SkipReason
from dialsync.store.database import after_commit, chunks
from dialsync.store.tables import history, sync_records

log = logging.getLogger(__name__)
H = history.c
R = sync_records.c
# Why a contact became not callable (routed_elsewhere is not one: it is called from another list).
OPT_OUT_REASONS = tuple(r.value for r in SkipReason if r is not SkipReason.ROUTED_ELSEWHERE)


def pending_opt_out() -> Any:
    """Rows that must not be called and may still be in the dialer: a record id we hold, or a
    create sent whose answer never came (it may have happened). A contact moved to another
    list is not an opt-out (a retrying row's reason code holds the dialer's error instead)."""
    return and_(
        R.desired == "absent",
        or_(R.record_id.is_not(None), R.inflight == "create"),
        or_(R.reason_code.is_(None), R.reason_code != SkipReason.ROUTED_ELSEWHERE.value),
    )


# Events that end an opt-out at a list: the dialer answered the delete (or had nothing to
# delete), or a scan found the record gone.
REMOVED = or_(and_(H.event == "answered", H.outcome == "removed"), H.event == "confirmed_absent")
# Events that open an opt-out (a remove decision) or withdraw it (callable again).
_DECIDED = and_(H.event == "decided", H.outcome.in_(("remove", "create", "update")))

# Called with (destination, list_id, seconds from the Salesforce stamp to the removal) for
# each opt-out the dialer confirmed removed: the latency histogram (dialsync.metrics).
Listener = Callable[[str, str, float], None]
_listeners: list[Listener] = []


def listening() -> bool:
    return bool(_listeners)


def listen(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


@dataclass(frozen=True)
class OptOut:
    """One opt-out at one list: opened by a remove decision, closed by its removal."""

    contact_id: str
    destination: str
    list_id: str
    reason: str
    opted_out_at: datetime  # the Salesforce stamp of the first remove decision
    decided_at: datetime
    removed_at: datetime | None  # None: not confirmed removed (yet)


def walk(rows: Iterable[Any]) -> Iterator[OptOut]:
    """Opt-outs from events ordered by (contact, destination, list, at, id): a remove decision
    opens one (a later one while open changes nothing: the first stamp counts), a removal
    closes it, and a create or update decision withdraws it (callable again before removal).
    Only reasons that make a contact not callable count."""
    key: tuple[str, str, str] | None = None
    opened: Any = None
    for row in rows:
        here = (row.contact_id, row.destination, row.list_id)
        if here != key:
            if opened is not None:
                yield _opt_out(opened, None)
            key, opened = here, None
        if row.event == "decided" and row.outcome == "remove":
            if opened is None and row.reason in OPT_OUT_REASONS:
                opened = row
        elif row.event == "decided":
            opened = None
        elif opened is not None:  # a removal
            yield _opt_out(opened, row.at)
            opened = None
    if opened is not None:
        yield _opt_out(opened, None)


def _opt_out(row: Any, removed_at: datetime | None) -> OptOut:
    return OptOut(
        row.contact_id,
        row.destination,
        row.list_id,
        row.reason,
        row.stamp or row.at,
        row.at,
        removed_at,
    )


def evidence_query(*conditions: Any) -> Any:
    """The events that open and close opt-outs, in the order ``walk`` reads them."""
    return (
        select(H.contact_id, H.destination, H.list_id, H.event, H.outcome, H.reason, H.stamp, H.at)
        .where(or_(_DECIDED, REMOVED), *conditions)
        .order_by(H.contact_id, H.destination, H.list_id, H.at, H.id)
    )


# What a dialer answers when it did not do what was asked (its code is in ``reason``).
_DIALER_ERRORS = ("failed", "rejected", "duplicate")
# Row statuses whose reason code a dialer's answer wrote (see rowstate.transitions).
_ERROR_STATUSES = ("retrying", "rejected", "blocked")
_PULL_REASONS = frozenset(r.value for r in SkipReason)


@dataclass(frozen=True)
class Pending:
    """A row ``pending_opt_out`` selects, dated and explained from the history: the report,
    the opt_out_pending alert, its metrics and ``status`` all read it here, so they agree."""

    contact_id: str
    destination: str
    list_id: str
    # The Salesforce stamp of the change that first made the contact not callable in its open
    # opt-out (later edits of the still opted-out contact do not move it). Without that
    # evidence (pruned, or older than the history), the row's stamp, else its last change.
    since: datetime
    reason: str | None  # why it must not be called; None when nothing says (never an error)
    last_error: str | None  # the dialer's code, when its latest answer for it was a failure
    routed: bool  # no open opt-out, and its latest decision routed it to another list

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.contact_id, self.destination, self.list_id)


def pending(conn: Connection, *, explain: bool = True) -> list[Pending]:
    """Every opt-out the dialer may still hold.
    Without ``explain`` only ``since`` is read from the history (the alert and its metrics:
    half the rows read; ``reason`` and ``last_error`` are then None)."""
    query = select(
        R.external_id,
        R.destination,
        R.list_id,
        R.status,
        R.reason_code,
        R.source_modstamp,
        R.updated_at,
    ).where(pending_opt_out())
    rows = conn.execute(query).all()
    ids = sorted({r.external_id for r in rows})
    opened: dict[tuple[str, str, str], OptOut] = {}
    said: dict[tuple[str, str, str], list[Any]] = {}
    for part in chunks(ids):
        for found in walk(conn.execute(evidence_query(H.contact_id.in_(part)))):
            if found.removed_at is None:
                opened[(found.contact_id, found.destination, found.list_id)] = found
        if not explain:
            continue
        for event in conn.execute(_reasons_query(H.contact_id.in_(part))):
            said.setdefault((event.contact_id, event.destination, event.list_id), []).append(event)
    out = []
    for row in rows:
        key = (row.external_id, row.destination, row.list_id)
        opt = opened.get(key)
        if explain:
            out.append(_explained(row, opt, said.get(key, [])))
        else:
            out.append(Pending(*key, _since(row, opt), None, None, False))
    return out


def _since(row: Any, opened: OptOut | None) -> datetime:
    if opened is not None:
        return opened.opted_out_at
    stamp: datetime = row.source_modstamp or row.updated_at  # no evidence of its start
    return stamp


def _reasons_query(*conditions: Any) -> Any:
    """The decisions that say why a contact must not be called, and the dialer's answers."""
    return (
        select(H.contact_id, H.destination, H.list_id, H.event, H.outcome, H.reason, H.at)
        .where(or_(and_(H.event == "decided", H.reason.is_not(None)), H.event == "answered"))
        .where(*conditions)
        .order_by(H.at, H.id)
    )


def _explained(row: Any, opened: OptOut | None, events: Sequence[Any]) -> Pending:
    decided = [e for e in events if e.event == "decided"]
    answers = [e for e in events if e.event == "answered"]
    latest = decided[-1].reason if decided else None
    since = _since(row, opened)
    if opened is not None:
        reason: str | None = opened.reason
        routed = False
        answers = [e for e in answers if e.at >= opened.decided_at]
    else:
        known = [e.reason for e in decided if e.reason in OPT_OUT_REASONS]
        reason = known[-1] if known else None
        routed = latest is not None and latest not in OPT_OUT_REASONS
    if reason is None and row.reason_code in OPT_OUT_REASONS:
        reason = row.reason_code
    if answers:
        last = answers[-1]
        last_error = last.reason if last.outcome in _DIALER_ERRORS else None
    elif row.status in _ERROR_STATUSES and row.reason_code not in _PULL_REASONS:
        last_error = row.reason_code  # no answer in the history (pruned): the row's code
    else:
        last_error = None
    return Pending(row.external_id, row.destination, row.list_id, since, reason, last_error, routed)


def time_removals(conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
    """The opt-outs these removal events close, timed now (the events they pair with are in
    this transaction) and reported to the listeners once it committed: a removal rolled back
    was not made, and a histogram cannot take an observation back."""
    removals = [
        e
        for e in events
        if e["event"] == "confirmed_absent"
        or (e["event"] == "answered" and e["outcome"] == "removed")
    ]
    by_list: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for e in removals:
        by_list.setdefault((e["destination"], e["list_id"]), []).append(e)
    timed: list[tuple[str, str, float]] = []
    for (dest, list_id), items in by_list.items():
        ids = sorted({e["contact_id"] for e in items})
        at = {e["contact_id"]: e["at"] for e in items}
        for part in chunks(ids):
            query = evidence_query(
                H.destination == dest, H.list_id == list_id, H.contact_id.in_(part)
            )
            for opt in walk(conn.execute(query)):
                if opt.removed_at is None:  # still open: this event removes it
                    seconds = max(0.0, (at[opt.contact_id] - opt.opted_out_at).total_seconds())
                    timed.append((dest, list_id, seconds))
    if timed:
        after_commit(conn, lambda: _observe(timed))


def _observe(timed: Sequence[tuple[str, str, float]]) -> None:
    for dest, list_id, seconds in timed:
        for listener in list(_listeners):
            try:
                listener(dest, list_id, seconds)
            except Exception as exc:  # a metric must never fail the sync
                log.warning("opt-out latency not observed: %s", exc)
