"""Alerts as an operator sees them: `dialsync sync` run by cron, a loopback webhook receiver,
each alert once when it starts and once when it clears."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from dialsync.sandbox.harness import Sandboxes
from dialsync.store.store import open_store
from dialsync.store.tables import alert_state, sync_records
from tests.integration.helpers import ours, person
from tests.integration.test_cli import cli
from tests.webhook_receiver import Receiver, closed_port_url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _env(box: Sandboxes, url: str, **extra: str) -> dict[str, str]:
    return {
        **box.env(),
        "DIALSYNC_ALERTS__WEBHOOK_URL": url,
        "DIALSYNC_ALERTS__MIN_INTERVAL_SECONDS": "0",
        **extra,
    }


def _counts(result: object) -> dict[str, int]:
    out = result.stdout.strip().splitlines()[-1]  # type: ignore[attr-defined]
    counts: dict[str, int] = json.loads(out)
    return counts


def _report(env: dict[str, str], cwd: Path) -> list[dict[str, object]]:
    result = cli(["compliance", "report", "--since", "2000-01-01", "--json"], env, cwd)
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, object]] = json.loads(result.stdout)
    return entries


def _row_status(box: Sandboxes, external_id: str) -> str:
    store = open_store(f"sqlite:///{box.workdir / 'dialsync.db'}")
    with store.engine.connect() as conn:
        status: str = conn.execute(
            select(sync_records.c.status).where(sync_records.c.external_id == external_id)
        ).scalar_one()
    return status


@pytest.mark.slow
def test_an_opt_out_whose_delete_keeps_failing_fires_once_then_resolves(
    sandboxes: Sandboxes, receiver: Receiver, tmp_path: Path
) -> None:
    sf, td = sandboxes.salesforce, sandboxes.talkdesk
    kept, leaving = sf.insert_many([person(1), person(2)])
    env = _env(
        sandboxes,
        receiver.url,
        DIALSYNC_COMPLIANCE__OPT_OUT_SECONDS="0",
        # the failing deletes' retries inside a run, and the row's retry after it: short
        DIALSYNC_TALKDESK__MAX_BACKOFF_SECONDS="0.2",
        DIALSYNC_SYNC__RETRY_BASE_SECONDS="0.2",
    )
    first = cli(["sync", "--json"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert set(ours(sandboxes)) == {kept, leaving}
    assert receiver.received() == []  # nothing wrong yet: nothing sent

    td.set_faults(error_500_rate=1.0)  # every write to the list fails from now on
    sf.update(leaving, {"DoNotCall": True})
    for _ in range(2):  # the delete fails again and again; the alert is sent once
        result = cli(["sync", "--json"], env, tmp_path)
        assert result.returncode == 1, result.stderr  # not converged: the removal is retrying
        assert "opted out but still possibly in" in result.stderr  # the error line each cycle
    assert leaving in ours(sandboxes)
    assert receiver.received() == [("opt_out_pending", "firing")]
    [pending] = _report(env, tmp_path)  # the compliance report lists it as pending
    assert (pending["contact_id"], pending["reason"], pending["pending"]) == (
        leaving,
        "do_not_call",
        True,
    )
    [leg] = pending["destinations"]
    assert leg["pending_seconds"] >= 0 and "removed_at" not in leg
    fired = receiver.bodies[0]
    assert fired["contact_ids"] == [leaving]
    assert fired["destination"] == "talkdesk"
    assert "opted out" in fired["text"]

    td.set_faults(error_500_rate=0.0)
    for _ in range(30):  # until the retry is due and the delete goes through
        done = cli(["sync", "--json"], env, tmp_path)
        if _row_status(sandboxes, leaving) == "removed":
            assert done.returncode == 0, done.stderr
            break
        assert done.returncode == 1, done.stderr  # still waiting for its retry
        time.sleep(0.5)
    assert set(ours(sandboxes)) == {kept}
    assert receiver.received() == [("opt_out_pending", "firing"), ("opt_out_pending", "resolved")]
    [removed] = _report(env, tmp_path)
    assert removed["pending"] is False and removed["opted_out_at"] == pending["opted_out_at"]
    assert removed["destinations"][0]["removed_at"] is not None
    assert receiver.bodies[1]["contact_ids"] == [leaving]
    cli(["sync", "--json"], env, tmp_path)
    assert len(receiver.bodies) == 2  # cleared stays quiet


def test_a_failing_run_streak_fires_once_then_resolves(
    sandboxes: Sandboxes, receiver: Receiver, tmp_path: Path
) -> None:
    sandboxes.salesforce.insert_many([person(i) for i in range(3)])
    good = _env(sandboxes, receiver.url)
    bad = {**good, "DIALSYNC_SALESFORCE__CLIENT_SECRET": "not-the-secret"}
    for run in range(1, 5):  # the credential is refused each time; the third run alerts
        result = cli(["sync"], bad, tmp_path)
        assert result.returncode == 2  # a credential or list to fix
        assert "not-the-secret" not in result.stderr + result.stdout
        expected = [("runs_failing", "firing")] if run >= 3 else []
        assert receiver.received() == expected, f"after run {run}"
    assert "last 3 runs failed" in receiver.bodies[0]["text"]
    assert "not-the-secret" not in json.dumps(receiver.bodies)

    result = cli(["sync", "--json"], good, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _counts(result)["created"] == 3
    assert receiver.received() == [("runs_failing", "firing"), ("runs_failing", "resolved")]


def test_a_list_that_is_gone_fires_destination_down_naming_talkdesk(
    sandboxes: Sandboxes, receiver: Receiver, tmp_path: Path
) -> None:
    sandboxes.salesforce.insert_many([person(i) for i in range(2)])
    good = _env(sandboxes, receiver.url)
    gone = {**good, "DIALSYNC_TALKDESK__RECORD_LIST_ID": "00000000-0000-4000-8000-000000000000"}
    for _ in range(3):
        assert cli(["sync"], gone, tmp_path).returncode == 2  # a credential or list to fix
    assert sorted(receiver.received()) == [
        ("destination_down", "firing"),
        ("runs_failing", "firing"),
    ]
    down = next(b for b in receiver.bodies if b["alert"] == "destination_down")
    assert down["destination"] == "talkdesk" and "contact_ids" not in down
    assert cli(["sync"], good, tmp_path).returncode == 0
    assert sorted(receiver.received()[2:]) == [
        ("destination_down", "resolved"),
        ("runs_failing", "resolved"),
    ]


def test_a_webhook_that_is_down_neither_fails_nor_stops_the_sync(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(4)])
    good = _env(sandboxes, closed_port_url())
    bad = {**good, "DIALSYNC_SALESFORCE__CLIENT_SECRET": "not-the-secret"}
    for _ in range(3):  # the alert fires; its webhook refuses connections
        result = cli(["sync"], bad, tmp_path)
        assert result.returncode == 2  # the refused credential, nothing from the webhook
        assert "unexpected" not in result.stderr
    store = open_store(f"sqlite:///{sandboxes.workdir / 'dialsync.db'}")
    with store.engine.connect() as conn:
        row = conn.execute(select(alert_state).where(alert_state.c.key == "runs_failing")).one()
    assert (row.firing, row.notified) == (1, None)  # owed, not delivered
    assert row.attempts == 1 and row.next_attempt_at is not None  # a later check retries

    result = cli(["sync", "--json"], good, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _counts(result)["created"] == 4
    assert set(ours(sandboxes)) == set(ids)


@pytest.mark.slow
def test_dialsync_run_alerts_after_its_cycles(
    sandboxes: Sandboxes, receiver: Receiver, tmp_path: Path
) -> None:
    sandboxes.salesforce.insert_many([person(i) for i in range(2)])
    env = {
        **_env(sandboxes, receiver.url),
        "DIALSYNC_SALESFORCE__CLIENT_SECRET": "not-the-secret",
        "DIALSYNC_SYNC__INTERVAL_SECONDS": "1",
        "DIALSYNC_SYNC__RETRY_MAX_SECONDS": "1",  # the refusals' backoff: one interval
    }
    result = cli(["run", "--cycles", "4"], env, tmp_path)
    assert result.returncode == 0, result.stderr  # `run` logs a failed cycle and goes on
    assert receiver.received("runs_failing") == [("runs_failing", "firing")]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_the_service_alerts_from_its_beat_task(
    tmp_path: Path, pg_url: str, broker_url: str, receiver: Receiver
) -> None:
    from tests.integration.service import processes, service_env, wait_until

    with Sandboxes(tmp_path / "box") as box:
        ids = set(box.salesforce.insert_many([person(i) for i in range(5)]))
        env = service_env(
            box,
            pg_url,
            broker_url,
            DIALSYNC_ALERTS__WEBHOOK_URL=receiver.url,
            DIALSYNC_ALERTS__MIN_INTERVAL_SECONDS="0",
            DIALSYNC_METRICS__PORT="",
            # beat every second, and the refusals' backoff one interval: three failed pulls
            # (the alert's threshold) in about three seconds
            DIALSYNC_SYNC__INTERVAL_SECONDS="1",
            DIALSYNC_SYNC__RETRY_MAX_SECONDS="1",
        )
        with processes(env, tmp_path) as procs:
            assert procs.run("db", "upgrade").returncode == 0
            bad = procs.start(
                "worker", "-c", "1", name="worker", DIALSYNC_SALESFORCE__CLIENT_SECRET="wrong"
            )
            procs.start("beat", name="beat")
            wait_until(
                lambda: bool(receiver.received("runs_failing")), what="the runs_failing alert"
            )
            procs.kill(bad)
            procs.start("worker", "-c", "1", name="worker2")
            wait_until(lambda: set(ours(box)) == ids, what="the sync after the fix")
            wait_until(
                lambda: len(receiver.received("runs_failing")) == 2, what="the resolved message"
            )
        assert receiver.received("runs_failing") == [
            ("runs_failing", "firing"),
            ("runs_failing", "resolved"),
        ]


def test_the_webhook_is_verified_with_the_ca_bundle(sandboxes: Sandboxes, tmp_path: Path) -> None:
    from dialsync.sandbox.tls import make_tls_files, server_context

    # The sandboxes' CA (DIALSYNC_CA_BUNDLE in their env) signed the receiver's certificate.
    tls = server_context(make_tls_files(sandboxes.salesforce.ca_file.parent))
    receiver = Receiver(tls).start()
    try:
        env = _env(sandboxes, receiver.url, DIALSYNC_SALESFORCE__CLIENT_SECRET="wrong")
        for _ in range(3):
            assert cli(["sync"], env, tmp_path).returncode == 2  # a credential or list to fix
        assert receiver.received() == [("runs_failing", "firing")]
    finally:
        receiver.stop()
