"""Alert conditions and delivery on a real state database (SQLite and PostgreSQL), with the
clock injected: what fires when, and what the webhook is told."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from dialsync.alerts import Alerts
from dialsync.alerts.conditions import Finding
from dialsync.destinations.base import TargetInfo
from dialsync.settings import AlertsSettings, ComplianceSettings, Settings, SyncSettings
from dialsync.store.protocol import SyncStore
from dialsync.store.store import open_store
from dialsync.store.tables import sync_records
from tests.webhook_receiver import Receiver

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _settings(db_url: str, url: str | None = None, **alerts: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        destinations="talkdesk,everbridge",
        alerts=AlertsSettings(webhook_url=url, **{"min_interval_seconds": 0, **alerts}),
        compliance=ComplianceSettings(opt_out_seconds=900),
        sync=SyncSettings(interval_seconds=60),
    )


def _run(store: SyncStore, status: str, error: str | None = None, **counts: int) -> None:
    run_id = store.start_run("sync")
    store.finish_run(run_id, status, counts, error=error)


def _firing(findings: list[Finding]) -> set[str]:
    return {f.key for f in findings if f.firing}


def _check(alerts: Alerts, targets: dict[str, TargetInfo] | None = None) -> set[str]:
    found = alerts.check(targets)
    alerts.wait()
    return _firing(found)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> SyncStore:
    return open_store(db_url, clock=clock)


def test_min_interval_holds_back_a_flapping_alert(
    db_url: str, store: SyncStore, clock: Clock, receiver: Receiver
) -> None:
    alerts = Alerts(_settings(db_url, receiver.url, min_interval_seconds=300), store, clock=clock)
    for _ in range(3):
        _run(store, "failed", "salesforce: credentials refused (HTTP 400, invalid_client)")
    assert "runs_failing" in _check(alerts)
    assert receiver.received("runs_failing") == [("runs_failing", "firing")]
    for status in ("ok", "failed", "failed", "failed", "ok"):  # clears, fires, clears again
        clock.advance(20)
        _run(store, status, "salesforce: down" if status == "failed" else None)
        _check(alerts)
    assert receiver.received("runs_failing") == [("runs_failing", "firing")]  # held back
    clock.advance(300)
    assert "runs_failing" not in _check(alerts)
    assert receiver.received("runs_failing") == [
        ("runs_failing", "firing"),
        ("runs_failing", "resolved"),
    ]


def test_a_failed_delivery_is_retried_on_a_later_check_with_backoff(
    db_url: str, store: SyncStore, clock: Clock, receiver: Receiver
) -> None:
    alerts = Alerts(_settings(db_url, receiver.url), store, clock=clock)
    for _ in range(3):
        _run(store, "failed", "salesforce: down (HTTP 503)")
    receiver.status = 503
    _check(alerts)
    assert receiver.posts == 2 and receiver.received() == []  # two tries in this check
    receiver.status = 200
    clock.advance(5)
    _check(alerts)
    assert receiver.posts == 2  # backing off: not yet
    clock.advance(60)
    _check(alerts)
    assert receiver.received() == [("runs_failing", "firing")]
    clock.advance(60)
    _check(alerts)
    assert receiver.received() == [("runs_failing", "firing")]  # sent once


def test_two_processes_checking_send_each_message_once(
    db_url: str, store: SyncStore, clock: Clock, receiver: Receiver
) -> None:
    for _ in range(3):
        _run(store, "failed", "salesforce: down (HTTP 503)")
    settings = _settings(db_url, receiver.url)
    # Two processes' worth: separate stores (connection pools) on the same database.
    checkers = [Alerts(settings, open_store(db_url, clock=clock), clock=clock) for _ in range(4)]
    for checker in checkers:
        checker.check()
    for checker in checkers:
        checker.wait()
    assert receiver.received() == [("runs_failing", "firing")]


def test_destination_down_names_the_destination_that_failed_its_runs(
    db_url: str, store: SyncStore, clock: Clock
) -> None:
    alerts = Alerts(_settings(db_url), store, clock=clock)
    down = "everbridge: the token endpoint failed (HTTP 503)"
    _run(store, "partial", down, created=5)
    _run(store, "partial", f"talkdesk: list not found (HTTP 404); {down}")
    assert _check(alerts) == set()  # two runs: under the threshold of three
    _run(store, "partial", down)
    assert _check(alerts) == {"destination_down:everbridge"}
    _run(store, "ok")
    assert _check(alerts) == set()


def test_rejected_records_over_the_percentage_of_a_run(
    db_url: str, store: SyncStore, clock: Clock
) -> None:
    alerts = Alerts(_settings(db_url, rejected_percent=5), store, clock=clock)
    _run(store, "ok", created=95, rejected=5)
    assert _check(alerts) == set()  # 5% is not over 5%
    _run(store, "ok", created=90, rejected=10)
    assert _check(alerts) == {"rejected_records"}
    _run(store, "ok")  # a run with nothing to say keeps the verdict
    assert _check(alerts) == {"rejected_records"}
    _run(store, "ok", updated=200, rejected=1)
    assert _check(alerts) == set()


def _row(external_id: str, **values: Any) -> dict[str, Any]:
    return {
        "destination": "talkdesk",
        "list_id": "L1",
        "external_id": external_id,
        "status": "retrying",
        "desired": "absent",
        "attempts": 1,
        "updated_at": T0,
        "record_id": None,
        "inflight": None,
        **values,
    }


def test_opt_out_pending_counts_from_the_salesforce_stamp(
    db_url: str, store: SyncStore, clock: Clock
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(sync_records),
            [
                _row("003000000000001AAA", record_id="r1", source_modstamp=T0),
                _row("003000000000002AAA", inflight="create", source_modstamp=T0),
                # gone from the list already, or never sent: nothing pending
                _row("003000000000003AAA", status="removed", source_modstamp=T0),
                _row("003000000000004AAA", status="skipped", source_modstamp=T0),
                # still wanted: not an opt-out
                _row("003000000000005AAA", desired="present", record_id="r5", source_modstamp=T0),
            ],
        )
    alerts = Alerts(_settings(db_url), store, clock=clock)
    clock.advance(900)
    assert _check(alerts) == set()  # 900 s is the threshold, not past it
    clock.advance(1)
    found = {f.key: f for f in alerts.check()}
    pending = found["opt_out_pending:talkdesk:L1"]
    assert pending.firing and pending.destination == "talkdesk"
    assert sorted(pending.contact_ids) == ["003000000000001AAA", "003000000000002AAA"]
    assert pending.values == {"count": 2, "oldest_seconds": 901}


def test_list_capacity_from_the_count_the_list_reports(
    db_url: str, store: SyncStore, clock: Clock
) -> None:
    alerts = Alerts(_settings(db_url), store, clock=clock)
    near = {"talkdesk:L1": TargetInfo("List", 200_001, True)}
    assert _check(alerts, near) == {"list_capacity:talkdesk:L1"}
    assert _check(alerts, {"talkdesk:L1": TargetInfo("List", 200_000, True)}) == set()
    assert _check(alerts, near) == {"list_capacity:talkdesk:L1"}
    assert _check(alerts) == set()  # a process that did not open the list: no verdict...
    from dialsync.alerts.state import firing_states

    assert firing_states(store) == {("list_capacity", "list_capacity:talkdesk:L1"): True}


def test_a_destination_taken_out_of_the_settings_clears_its_alert(
    db_url: str, store: SyncStore, clock: Clock
) -> None:
    for _ in range(3):
        _run(store, "partial", "everbridge: the token endpoint failed (HTTP 503)")
    assert _check(Alerts(_settings(db_url), store, clock=clock)) == {"destination_down:everbridge"}
    only_talkdesk = _settings(db_url).model_copy(update={"destinations": "talkdesk"})
    assert _check(Alerts(only_talkdesk, store, clock=clock)) == set()
    from dialsync.alerts.state import firing_states

    assert firing_states(store) == {("destination_down", "destination_down:everbridge"): False}


def test_no_recent_pull_after_three_intervals(db_url: str, store: SyncStore, clock: Clock) -> None:
    alerts = Alerts(_settings(db_url), store, clock=clock)
    assert _check(alerts) == set()  # never run: nothing to miss yet
    _run(store, "ok")
    clock.advance(180)
    assert _check(alerts) == set()
    clock.advance(1)
    assert _check(alerts) == {"no_recent_pull"}
    _run(store, "failed", "salesforce: down")  # a failed pull is not a pull
    assert "no_recent_pull" in _check(alerts)
    _run(store, "ok")
    assert "no_recent_pull" not in _check(alerts)


def test_metrics_show_pending_opt_outs_and_alert_states(
    db_url: str, store: SyncStore, clock: Clock
) -> None:
    from dialsync.metrics import StateCollector

    with store.engine.begin() as conn:
        conn.execute(
            insert(sync_records),
            [_row("003000000000001AAA", record_id="r1", source_modstamp=T0 - timedelta(hours=1))],
        )
    for _ in range(3):
        _run(store, "failed", "salesforce: down")
    Alerts(_settings(db_url), store).check()  # the real clock: an hour-old opt-out fires
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in StateCollector(db_url, _settings(db_url)).collect()
        for s in family.samples
    }
    where = (("destination", "talkdesk"), ("list", "L1"))
    assert samples[("dialsync_opt_outs_pending", where)] == 1
    assert samples[("dialsync_opt_out_pending_oldest_seconds", where)] > 3600
    firing = ("dialsync_alert_firing", (("alert", "runs_failing"), ("key", "runs_failing")))
    assert samples[firing] == 1
    assert samples[("dialsync_opt_out_threshold_seconds", ())] == 900


def test_no_recent_pull_counts_poll_intervals_when_the_stream_is_on(
    db_url: str, store: SyncStore, clock: Clock
) -> None:
    from dialsync.settings import StreamSettings

    streaming = _settings(db_url).model_copy(
        update={"stream": StreamSettings(enabled=True, poll_interval_seconds=600)}
    )
    alerts = Alerts(streaming, store, clock=clock)
    _run(store, "ok")
    clock.advance(181)  # three sync intervals: the poll is not due yet with the stream on
    assert _check(alerts) == set()
    clock.advance(1800)
    assert _check(alerts) == {"no_recent_pull"}
