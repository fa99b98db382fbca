"""Opt-outs read from the history, on a real state database (SQLite and Postgres): which the
report lists, how old a pending one is (the same in the report, the alert, its metric and
`status`), why it must not be called, and when its removal is observed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from dialsync.alerts.conditions import opt_out_pending, pending_opt_outs
from dialsync.compliance.report import latency_summary, opt_outs
from dialsync.destinations.base import ItemResult, Outcome
from dialsync.rowstate import evidence, transitions
from dialsync.rowstate.decide import Desired
from dialsync.store import history, optouts
from dialsync.store.protocol import TargetStore
from dialsync.store.store import SqlSyncStore
from tests.unit.stores import T0, Clock, sent

CID = "003000000000001AAA"
WHERE = ("talkdesk", "L1")


def _at(clock: Clock, minutes: float) -> datetime:
    clock.now = T0 + timedelta(minutes=minutes)
    return clock.now


def _created(td: TargetStore, contact: str = CID) -> None:
    td.apply([Desired(contact, T0, True, '{"a": 1}', "h1")], run_id=None)
    (row,) = td.claim("create", 10, 60.0)
    td.record([transitions.created(sent(row), f"R-{contact}", None)])


def _opted_out(td: TargetStore, stamp: datetime, contact: str = CID) -> None:
    """A Salesforce change stamped ``stamp`` of a contact that must not be called."""
    td.apply([Desired(contact, stamp, False, reason_code="do_not_call")], run_id=None)


def _delete(td: TargetStore, now: datetime, *, ok: bool) -> None:
    (row,) = td.claim("delete", 10, 60.0)
    if ok:
        answer = ItemResult(row.external_id, Outcome.OK)
        td.record(
            [transitions.removed(sent(row))],
            evidence.answers(*WHERE, "delete", [row], [answer], None, now),
        )
        return
    failed = transitions.failed(
        sent(row), code="HTTP_500", message="down", next_attempt_at=now, uncertain_create=False
    )
    td.record([failed], evidence.failed(*WHERE, "delete", [row.external_id], "HTTP_500", None, now))


def test_an_opt_out_decided_before_the_window_and_removed_in_it_is_listed(
    store: SqlSyncStore, clock: Clock
) -> None:
    td = store.target(*WHERE)
    _created(td)
    stamp = _at(clock, 59)
    _opted_out(td, stamp)
    _delete(td, _at(clock, 60), ok=False)  # the dialer refuses the delete for two hours
    removed = _at(clock, 180)
    _delete(td, removed, ok=True)
    now = _at(clock, 240)

    [entry] = opt_outs(store, T0 + timedelta(hours=2), now)  # decided before, removed after
    assert (entry.contact_id, entry.reason, entry.opted_out_at) == (CID, "do_not_call", stamp)
    [leg] = entry.destinations
    assert leg.removed_at == removed and leg.latency_seconds == (removed - stamp).total_seconds()
    summary = latency_summary(store, now, window=timedelta(hours=2))["talkdesk:L1"]
    assert summary["removed"] == 1 and summary["max_seconds"] == leg.latency_seconds
    assert opt_outs(store, removed + timedelta(seconds=1), now) == []  # removed before: not


def test_a_pending_opt_out_is_as_old_as_its_first_stamp_everywhere(
    store: SqlSyncStore, clock: Clock
) -> None:
    """Salesforce edits of the still opted-out contact move the row's stamp forward; the
    opt-out's age still counts from the change that made it not callable."""
    td = store.target(*WHERE)
    _created(td)
    first = _at(clock, 50)
    _opted_out(td, first)
    _delete(td, _at(clock, 60), ok=False)
    edited = _at(clock, 179)
    _opted_out(td, edited)  # another edit (a title): still DoNotCall, a new stamp
    now = _at(clock, 180)
    age = (now - first).total_seconds()  # 130 minutes, though the last edit is a minute old

    with store.engine.connect() as conn:
        [finding] = opt_out_pending(conn, 900, now)
    assert finding.firing and finding.contact_ids == (CID,)
    assert finding.values == {"count": 1, "oldest_seconds": int(age)}
    assert pending_opt_outs(store) == {WHERE: (1, first)}  # the metric's oldest
    [entry] = opt_outs(store, now - timedelta(minutes=5), now)
    assert entry.opted_out_at == first and entry.destinations[0].pending_seconds == age
    assert latency_summary(store, now)["talkdesk:L1"]["oldest_pending_seconds"] == age  # status


def test_a_pending_opt_out_shows_why_and_the_dialers_error_apart(
    store: SqlSyncStore, clock: Clock
) -> None:
    """Opted out before it was ever sent (decided skip), then a list scan found a record of
    ours for it (put back by hand): its delete fails. The row's reason code now holds the
    dialer's error; the report says why the contact must not be called, and the error aside."""
    td = store.target(*WHERE)
    _opted_out(td, T0)  # never in the list: a skip, no remove decision
    td.adopt([(CID, "R9", None)])
    _delete(td, _at(clock, 10), ok=False)
    now = _at(clock, 20)

    [entry] = opt_outs(store, T0, now)
    assert entry.reason == "do_not_call"
    [leg] = entry.as_dict()["destinations"]
    assert leg["pending_seconds"] == 20 * 60 and leg["last_error"] == "HTTP_500"

    history.prune(store, now + timedelta(seconds=1))  # its evidence is gone (retention)
    [entry] = opt_outs(store, T0, now)
    assert entry.reason == "unknown"  # not known any more, and not the dialer's error
    assert entry.destinations[0].last_error == "HTTP_500"


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, float]]]:
    seen: list[tuple[str, str, float]] = []

    def listener(destination: str, list_id: str, seconds: float) -> None:
        seen.append((destination, list_id, seconds))

    monkeypatch.setattr(optouts, "_listeners", [])  # this test's listener only, then restored
    optouts.listen(listener)
    yield seen


def test_a_removal_is_observed_once_its_transaction_committed(
    store: SqlSyncStore, clock: Clock, observed: list[tuple[str, str, float]]
) -> None:
    td = store.target(*WHERE)
    other = "003000000000002AAA"
    for contact in (CID, other):
        _created(td, contact)
        _opted_out(td, T0, contact)
    now = _at(clock, 5)
    gone = [ItemResult(c, Outcome.OK) for c in (CID, other)]
    rows = [r for r in td.claim("delete", 10, 60.0)]

    def removal(contact: str) -> list[dict[str, object]]:
        [row] = [r for r in rows if r.external_id == contact]
        return evidence.answers(*WHERE, "delete", [row], gone, None, now)

    with pytest.raises(RuntimeError), store.tx() as conn:
        history.insert_events(conn, removal(other))
        raise RuntimeError("the transaction never commits")
    assert observed == []  # rolled back: no removal to time

    with store.tx() as conn:
        history.insert_events(conn, removal(CID))
        assert observed == []  # not committed yet
    assert observed == [("talkdesk", "L1", 300.0)]
