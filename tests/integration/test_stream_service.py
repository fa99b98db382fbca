"""`dialsync stream` as real processes: one subscriber per org (a Redis lock), the other stands
by and takes over; recorded contacts are handed to push tasks that a real worker sends."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.pubsub import PubSubSandbox
from tests.integration.helpers import ours, person
from tests.integration.service import free_port, processes, wait_until


@pytest.fixture
def pubsub(sandboxes: Sandboxes) -> Iterator[PubSubSandbox]:
    with PubSubSandbox(sandboxes.salesforce, keepalive_seconds=0.5) as server:
        yield server


@pytest.mark.slow
def test_two_stream_processes_make_one_subscriber_and_the_other_takes_over(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, broker_url: str, tmp_path: Path
) -> None:
    env = {
        **sandboxes.env(f"sqlite:///{tmp_path / 'state.db'}"),
        "DIALSYNC_BROKER_URL": broker_url,
        "DIALSYNC_STREAM__ENABLED": "true",
        "DIALSYNC_STREAM__PUBSUB_ENDPOINT": pubsub.endpoint,
        # the lock's TTL: renewed every 3 s while the first lives, free 9 s at most after it dies
        "DIALSYNC_STREAM__TAKEOVER_SECONDS": "9",
    }
    sf = sandboxes.salesforce
    with processes(env, tmp_path) as procs:
        assert procs.run("db", "upgrade").returncode == 0
        procs.start("worker", "-c", "1", name="worker")
        first = procs.start("stream", name="first")
        wait_until(lambda: pubsub.subscribes == 1, what="the first process subscribed")
        procs.start("stream", name="second")
        wait_until(
            lambda: "standing by" in procs.log("second"), what="the second process stands by"
        )
        assert pubsub.subscribes == 1
        joey = sf.insert(person(1))
        wait_until(lambda: joey in ours(sandboxes), what="recorded, then pushed by the worker")
        procs.kill(first, signal.SIGKILL)  # dies holding the lock: its TTL frees it
        wait_until(lambda: pubsub.subscribes == 2, timeout=90, what="the standby took over")
        sf.update(joey, {"DoNotCall": True})
        wait_until(lambda: joey not in ours(sandboxes), what="the new subscriber carries on")
        assert "this process is the org's subscriber" in procs.log("second")


def test_a_subscriber_that_stops_hands_over_to_the_standby_at_once(
    sandboxes: Sandboxes,
    pubsub: PubSubSandbox,
    broker_url: str,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dialsync.settings import StreamSettings
    from dialsync.stream import runner

    # A standby that only tried the lock now and then would not come round during the test:
    # only the subscriber saying it let go can wake it.
    monkeypatch.setattr(runner, "STANDBY_SECONDS", 3600.0)
    caplog.set_level(logging.INFO, logger="dialsync.stream")
    settings = sandboxes.settings(
        sqlite_url,
        broker_url=broker_url,
        stream=StreamSettings(enabled=True, pubsub_endpoint=pubsub.endpoint),
    )
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=runner.run_service, args=(settings, stop), daemon=True)
        for stop in stops
    ]
    try:
        threads[0].start()
        wait_until(lambda: pubsub.subscribes == 1, what="the first subscribed")
        threads[1].start()
        wait_until(lambda: "standing by" in caplog.text, what="the second stands by")
        stops[0].set()  # a clean stop: the lock is released and the release announced
        threads[0].join(timeout=30)
        wait_until(lambda: pubsub.subscribes == 2, what="the standby took over")
        assert caplog.text.count("this process is the org's subscriber") == 2
    finally:
        for stop, thread in zip(stops, threads, strict=True):
            stop.set()
            thread.join(timeout=30)


@pytest.mark.slow
def test_the_stream_process_serves_its_metrics(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, broker_url: str, tmp_path: Path
) -> None:
    import httpx

    from tests.integration.test_doctor_metrics import scrape, value

    port = free_port()
    env = {
        **sandboxes.env(f"sqlite:///{tmp_path / 'state.db'}"),
        "DIALSYNC_BROKER_URL": broker_url,
        "DIALSYNC_STREAM__ENABLED": "true",
        "DIALSYNC_STREAM__PUBSUB_ENDPOINT": pubsub.endpoint,
        "DIALSYNC_METRICS__PORT": str(port),
        "DIALSYNC_METRICS__ADDRESS": "127.0.0.1",
        "DIALSYNC_METRICS__DIR": str(tmp_path / "metrics"),
    }

    def sample(name: str) -> float:
        try:
            return value(scrape(port), name)
        except httpx.HTTPError:
            return 0.0

    with processes(env, tmp_path) as procs:
        assert procs.run("db", "upgrade").returncode == 0
        procs.start("stream", name="stream")
        wait_until(lambda: sample("dialsync_stream_live") == 1, what="live: confirmed, caught up")
        sandboxes.salesforce.insert(person(1))
        wait_until(lambda: sample("dialsync_stream_events_total") == 1, what="the event counted")
        wait_until(lambda: sample("dialsync_stream_keepalives_total") > 0, what="keepalives")


def test_doctor_checks_change_data_capture_for_contact(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, tmp_path: Path
) -> None:
    from tests.integration.test_doctor_metrics import doctor

    env = {
        **sandboxes.env(),
        "DIALSYNC_STREAM__ENABLED": "true",
        "DIALSYNC_STREAM__PUBSUB_ENDPOINT": pubsub.endpoint,
    }
    _, checks = doctor(env, tmp_path)
    assert checks["change data capture"]["status"] == "ok"
    assert checks["pub/sub api"]["status"] == "ok"
    sandboxes.salesforce.cdc_entities.clear()  # an admin never selected Contact
    code, checks = doctor(env, tmp_path)
    assert code == 1
    assert checks["change data capture"]["status"] == "fail"
    assert "ContactChangeEvent is not selected" in checks["change data capture"]["detail"]
    assert "Setup > Integrations > Change Data Capture" in checks["change data capture"]["fix"]


def test_run_streams_when_enabled_and_polls_at_the_stream_interval(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, tmp_path: Path
) -> None:
    env = {
        **sandboxes.env(f"sqlite:///{tmp_path / 'state.db'}"),
        "DIALSYNC_STREAM__ENABLED": "true",
        "DIALSYNC_STREAM__PUBSUB_ENDPOINT": pubsub.endpoint,
        # Two intervals the schedule can tell apart, both too long for a second cycle to come
        # round during the test: only the stream can carry the changes.
        "DIALSYNC_SYNC__INTERVAL_SECONDS": "1800",
        "DIALSYNC_STREAM__POLL_INTERVAL_SECONDS": "3600",
    }
    sf = sandboxes.salesforce
    with processes(env, tmp_path) as procs:
        procs.start("run", name="run")
        wait_until(lambda: pubsub.subscribes == 1, what="`dialsync run` subscribed")
        wait_until(lambda: "run 1 (sync) finished" in procs.log("run"), what="the first cycle")
        schedule = [line for line in procs.log("run").splitlines() if "polling every" in line]
        assert len(schedule) == 1
        assert "polling every 3600 s (DIALSYNC_STREAM__POLL_INTERVAL_SECONDS)" in schedule[0]
        joey = sf.insert(person(1))
        wait_until(lambda: joey in ours(sandboxes), what="the change arrived by the stream")
        sf.update(joey, {"DoNotCall": True})
        wait_until(lambda: joey not in ours(sandboxes), what="the opt-out arrived by the stream")


def test_beat_polls_at_the_stream_interval_when_the_stream_is_on(sandboxes: Sandboxes) -> None:
    from dialsync.settings import StreamSettings, SyncSettings
    from dialsync.worker.celery_app import beat_schedule

    sync = SyncSettings(interval_seconds=1800)
    polling = beat_schedule(
        sandboxes.settings(sync=sync, stream=StreamSettings(poll_interval_seconds=3600))
    )
    streaming = beat_schedule(
        sandboxes.settings(
            sync=sync, stream=StreamSettings(enabled=True, poll_interval_seconds=3600)
        )
    )
    assert polling["pull"]["schedule"] == timedelta(seconds=1800)
    assert streaming["pull"]["schedule"] == timedelta(seconds=3600)
    assert streaming["push-due"]["schedule"] == timedelta(seconds=1800)  # pushes: the normal one


def test_stream_refuses_to_start_when_off_or_misconfigured(
    sandboxes: Sandboxes, tmp_path: Path, broker_url: str
) -> None:
    env = {**sandboxes.env(), "DIALSYNC_BROKER_URL": broker_url}
    with processes(env, tmp_path) as procs:
        off = procs.run("stream")
        assert off.returncode == 2
        assert "DIALSYNC_STREAM__ENABLED is off" in off.stderr
    bad = {
        **env,
        "DIALSYNC_STREAM__ENABLED": "true",
        "DIALSYNC_STREAM__PUBSUB_ENDPOINT": "https://x",
    }
    with processes(bad, tmp_path) as procs:
        wrong = procs.run("stream")
        assert wrong.returncode == 2
        assert "DIALSYNC_STREAM__PUBSUB_ENDPOINT is invalid" in wrong.stderr
