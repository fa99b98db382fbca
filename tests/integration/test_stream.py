"""The change feed end to end: the Pub/Sub sandbox (real gRPC over TLS on loopback) emits
ContactChangeEvents, the subscriber re-reads the contacts through the engine, the Talkdesk
sandbox's list follows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.pubsub import PubSubSandbox
from tests.integration.helpers import ours, person
from tests.integration.stream_helpers import stream_settings, streaming, wait_for


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
