"""Where a change could fall between two things: a subscription the server puts in place late
(the catch-up must come after it), and a keepalive whose ``latest_replay_id`` is past events not
yet delivered (the stored position must not move there)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.pubsub import PubSubSandbox, replay_bytes
from dialsync.settings import SyncSettings
from dialsync.stream import client, subscriber
from dialsync.stream.client import Subscription
from dialsync.stream.subscriber import Position
from tests.integration.helpers import ours, person
from tests.integration.stream_helpers import ready, stream_settings, streaming, wait_for


@pytest.fixture
def pubsub(sandboxes: Sandboxes) -> Iterator[PubSubSandbox]:
    with PubSubSandbox(sandboxes.salesforce, keepalive_seconds=0.2) as server:
        yield server


def test_the_catch_up_counts_only_once_the_subscription_is_confirmed(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf = sandboxes.salesforce
    monkeypatch.setattr(subscriber, "ESTABLISH_WAIT", 0.2)  # not 10 s: the test waits for it
    # No poll comes round during the test: only a catch-up can find a change made before the
    # subscription started.
    settings = stream_settings(
        sandboxes, pubsub, sqlite_url, sync=SyncSettings(interval_seconds=3600)
    )
    with ExitStack() as held:
        held.enter_context(pubsub.holding())  # the server puts the subscription in place late
        with streaming(settings) as running:
            store = running.engine.store
            wait_for(store.last_success, "a window read ran while the subscription was unconfirmed")
            ross = sf.insert(person(2))  # after that read, before the subscription starts
            assert pubsub.subscribes == 0
            held.close()  # in place now, from LATEST: ross's event is behind it
            ready(running)
            wait_for(lambda: ross in ours(sandboxes), "the catch-up after the confirmation")
            assert running.metrics.fallbacks == ["unconfirmed"]
            assert pubsub.presets == ["LATEST"]


def test_a_keepalive_past_undelivered_events_leaves_the_position_and_a_restart_gets_them(
    sandboxes: Sandboxes, pubsub: PubSubSandbox, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf = sandboxes.salesforce
    settings = stream_settings(sandboxes, pubsub, sqlite_url)
    joey = sf.insert(person(1))
    with monkeypatch.context() as asks:
        # A client whose requested events are used up (as with 100 in flight): it asked for one
        # event and asks for no more, so the server holds the next ones back.
        asks.setattr(client, "MAX_REQUESTED", 1)
        asks.setattr(Subscription, "request", lambda self, n: None)
        with streaming(settings) as running:
            ready(running)
            ross = sf.insert(person(2))  # the one event asked for
            wait_for(lambda: ross in ours(sandboxes), "the event asked for was processed")
            position = Position(running.engine.store, settings.stream.topic)
            stored = wait_for(position.load, "its replay id is stored")
            sf.update(joey, {"DoNotCall": True})  # held back: nothing more was asked for
            opt_out = replay_bytes(pubsub.events()[-1].replay)
            wait_for(lambda: opt_out in pubsub.keepalives, "a keepalive reports the opt-out's id")
            sent = pubsub.keepalives.index(opt_out)  # keepalives come in order
            wait_for(lambda: running.metrics.keepalive_count > sent, "the client handled it")
            assert position.load() == stored  # not moved past the opt-out never processed
            assert joey in ours(sandboxes)
    with streaming(settings):  # a restart, asking as usual
        wait_for(lambda: joey not in ours(sandboxes), "the held-back opt-out came after all")
    assert pubsub.presets == ["LATEST", "CUSTOM"]


def test_a_resumed_subscription_is_live_once_the_server_confirms_it_not_at_its_first_event(
    sandboxes: Sandboxes, sqlite_url: str
) -> None:
    """Resuming from a stored replay id in a quiet org: the server's headers confirm the
    subscription; the first response may be a keepalive minutes later (Salesforce: 270 s)."""
    sf = sandboxes.salesforce
    with PubSubSandbox(sf, keepalive_seconds=3600) as quiet:
        settings = stream_settings(sandboxes, quiet, sqlite_url)
        with streaming(settings) as running:
            ready(running)
            joey = sf.insert(person(1))  # an event, so a position is stored
            wait_for(lambda: joey in ours(sandboxes), "the event was processed")
            wait_for(Position(running.engine.store, settings.stream.topic).load, "stored")
        with streaming(settings) as resumed:
            ready(resumed)  # no event and no keepalive comes: the headers say it
        assert quiet.presets == ["LATEST", "CUSTOM"]
