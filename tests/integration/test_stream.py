"""The change feed end to end: the Pub/Sub sandbox (real gRPC over TLS on loopback) emits
ContactChangeEvents, the subscriber re-reads the contacts through the engine, the Talkdesk
sandbox's list follows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.pubsub import PubSubSandbox
from dialsync.settings import Settings, SyncSettings
from dialsync.stream.subscriber import Position
from tests.integration.helpers import ours, person
from tests.integration.stream_helpers import ready, stream_settings, streaming, wait_for


@pytest.fixture
def pubsub(sandboxes: Sandboxes) -> Iterator[PubSubSandbox]:
    with PubSubSandbox(sandboxes.salesforce, keepalive_seconds=0.2) as server:
        yield server


def test_each_change_type_reaches_the_list(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    settings = stream_settings(sandboxes, pubsub, sqlite_url)
    with streaming(settings):
        joey = sf.insert(person(1))  # CREATE
        wait_for(lambda: joey in ours(sandboxes), "the created contact is listed")
        sf.update(joey, {"DoNotCall": True})  # UPDATE: an opt-out leaves the list
        wait_for(lambda: joey not in ours(sandboxes), "the opted-out contact left the list")
        sf.update(joey, {"DoNotCall": False})
        wait_for(lambda: joey in ours(sandboxes), "listed again")
        sf.soft_delete(joey)  # DELETE (read back through queryAll)
        wait_for(lambda: joey not in ours(sandboxes), "the deleted contact left the list")
        sf.undelete(joey)  # UNDELETE
        wait_for(lambda: joey in ours(sandboxes), "the undeleted contact is back")
    kinds = [e.change_type for e in pubsub.events()]
    assert kinds == ["CREATE", "UPDATE", "UPDATE", "DELETE", "UNDELETE"]


def test_gap_events_re_read_their_ids(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    with streaming(stream_settings(sandboxes, pubsub, sqlite_url)):
        joey = sf.insert(person(1))
        wait_for(lambda: joey in ours(sandboxes), "listed")
        with pubsub.silenced():  # the change happens, its event could not be built
            sf.update(joey, {"DoNotCall": True})
        pubsub.gap("UPDATE", [joey])
        wait_for(lambda: joey not in ours(sandboxes), "the gap's id was re-read: opted out")
        with pubsub.silenced():
            ross = sf.insert(person(2))
        pubsub.gap("CREATE", [ross])
        wait_for(lambda: ross in ours(sandboxes), "the gap's created contact is listed")


def test_overflow_re_reads_the_window_from_the_poll_cursor(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    with streaming(stream_settings(sandboxes, pubsub, sqlite_url)):
        first = sf.insert(person(1))
        wait_for(lambda: first in ours(sandboxes), "listed")
        with pubsub.silenced():  # one huge transaction: no per-record events at all
            many = sf.insert_many([person(n) for n in range(10, 20)])
        pubsub.overflow()
        wait_for(lambda: set(many) <= set(ours(sandboxes)), "the whole window was re-read")


def _listed_with_a_stored_position(sandboxes: Sandboxes, settings: Settings) -> str:
    """A first stream run lists one contact and stores its position, then stops."""
    with streaming(settings) as running:
        ready(running)  # so the change comes as an event, whose id is the position stored
        joey = sandboxes.salesforce.insert(person(1))
        wait_for(lambda: joey in ours(sandboxes), "listed")
        position = Position(running.engine.store, settings.stream.topic)
        wait_for(lambda: position.load() is not None, "a position is stored")
    return joey


def test_restart_resumes_from_the_stored_replay_id(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    settings = stream_settings(sandboxes, pubsub, sqlite_url)
    joey = _listed_with_a_stored_position(sandboxes, settings)
    ross = sf.insert(person(2))  # while no subscriber runs: retained on the bus
    sf.update(joey, {"DoNotCall": True})
    with streaming(settings):
        wait_for(lambda: ross in ours(sandboxes), "the change made while down arrived")
        wait_for(lambda: joey not in ours(sandboxes), "the opt-out made while down arrived")
    assert pubsub.presets[0] == "LATEST"  # the first start had no position
    assert pubsub.presets[-1] == "CUSTOM"  # the restart resumed from it


def test_a_replay_id_past_retention_polls_the_window_then_subscribes_from_latest(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    settings = stream_settings(sandboxes, pubsub, sqlite_url)
    _listed_with_a_stored_position(sandboxes, settings)
    pubsub.retention = timedelta(0)  # every retained event, and the stored position, expire
    ross = sf.insert(person(2))  # its event expires too: only the window read can find it
    with streaming(settings) as running:
        wait_for(lambda: ross in ours(sandboxes), "the window read found the expired change")
        assert running.metrics.fallbacks == ["replay_refused"]
        pubsub.retention = timedelta(hours=72)
        wait_for(lambda: pubsub.presets[-1] == "LATEST", "resubscribed from LATEST")
        chandler = sf.insert(person(3))
        wait_for(lambda: chandler in ours(sandboxes), "the stream carries on from LATEST")
    assert pubsub.presets[-2:] == ["CUSTOM", "LATEST"]


def test_auth_renewed_mid_stream_without_losing_position(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    with streaming(stream_settings(sandboxes, pubsub, sqlite_url)) as running:
        ready(running)  # joey comes as an event: a position to resume from
        joey = sf.insert(person(1))
        wait_for(lambda: joey in ours(sandboxes), "listed")
        subscribes = pubsub.subscribes
        sf.expire_sessions()  # the open stream ends with the auth error
        wait_for(lambda: pubsub.subscribes > subscribes, "resubscribed with a new token")
        ross = sf.insert(person(2))
        wait_for(lambda: ross in ours(sandboxes), "changes flow again")
    assert pubsub.presets[-1] == "CUSTOM"  # resumed where it was, not from LATEST


def test_allocation_exceeded_falls_back_to_polling(sandboxes: Sandboxes, sqlite_url: str) -> None:
    sf = sandboxes.salesforce
    with PubSubSandbox(sf, keepalive_seconds=0.2, allocation=1) as pubsub:
        settings = stream_settings(
            sandboxes, pubsub, sqlite_url, sync=SyncSettings(interval_seconds=1)
        )
        with streaming(settings) as running:
            ready(running)
            joey = sf.insert(person(1))  # the one delivery the org has left
            wait_for(lambda: joey in ours(sandboxes), "listed from the stream")
            ross = sf.insert(person(2))  # refused: the allocation is used up
            wait_for(lambda: ross in ours(sandboxes), "listed by the fallback poll")
            assert running.metrics.fallbacks == ["allocation"]
            assert running.metrics.delivered_count == 1


class Crash(BaseException):
    """The process dies: nothing after it runs (not an error any handler catches)."""


def test_a_crash_between_event_and_durable_contacts_loses_nothing(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    settings = stream_settings(sandboxes, pubsub, sqlite_url)
    with streaming(settings) as running:
        ready(running)
        joey = sf.insert(person(1))
        wait_for(lambda: joey in ours(sandboxes), "listed")
        position = Position(running.engine.store, settings.stream.topic)
        stored = wait_for(position.load, "a position is stored")

        def crash(*args: object, **kwargs: object) -> None:
            raise Crash

        running.engine.refresh = crash  # type: ignore[method-assign]
        sf.update(joey, {"DoNotCall": True})  # received, then the process dies
        running.thread.join(timeout=30)  # type: ignore[union-attr]
        assert isinstance(running.error, Crash)
        running.error = None
        assert position.load() == stored  # the position did not move past the lost work
        assert joey in ours(sandboxes)
    with streaming(settings):
        wait_for(lambda: joey not in ours(sandboxes), "the event came again after the restart")


def test_an_event_that_does_not_decode_is_covered_by_a_window_read(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    with streaming(stream_settings(sandboxes, pubsub, sqlite_url)):
        joey = sf.insert(person(1))
        wait_for(lambda: joey in ours(sandboxes), "listed")
        with pubsub.silenced():
            sf.update(joey, {"DoNotCall": True})
        pubsub.corrupt()  # the only trace of the opt-out is an event nobody can read
        wait_for(lambda: joey not in ours(sandboxes), "the window read found the opt-out")
        ross = sf.insert(person(2))
        wait_for(lambda: ross in ours(sandboxes), "the stream went on past the bad event")
