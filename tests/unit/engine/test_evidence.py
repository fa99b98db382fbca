"""The push hands the store its history events (rowstate.evidence) with the row changes they
describe: what was sent, and what the dialer answered, per contact."""

from __future__ import annotations

from typing import Any

import pytest

from dialsync.errors import TerminalError, TransientError
from tests.unit.engine.fakes import World, contact_id, world


def _events(w: World, kind: str) -> list[tuple[str, Any, Any]]:
    return [
        (e["contact_id"], e["outcome"], e["reason"]) for e in w.store.events if e["event"] == kind
    ]


def test_a_create_is_sent_with_its_write_ahead_and_answered_per_contact() -> None:
    w = world()
    for n in range(3):
        w.source.put(n)
    report = w.engine.sync()
    ids = [contact_id(n) for n in range(3)]
    assert _events(w, "sent") == [(c, "create", None) for c in ids]
    assert _events(w, "answered") == [(c, "ok", None) for c in ids]
    assert {e["run_id"] for e in w.store.events} == {report.run_id}
    assert {(e["destination"], e["list_id"]) for e in w.store.events} == {("dialer", "list-1")}


def test_a_removal_is_answered_removed() -> None:
    w = world()
    w.source.put(1)
    w.engine.sync()
    w.source.remove(1)
    w.clock.advance(60)
    w.engine.sync()
    assert (contact_id(1), "delete", None) in _events(w, "sent")
    assert _events(w, "answered")[-1] == (contact_id(1), "removed", None)


def test_a_batch_that_failed_whole_is_answered_failed_with_its_code() -> None:
    w = world()
    w.source.put(1)
    w.dialer.failures = [TransientError("down", status=503)]
    w.engine.sync()
    assert _events(w, "answered") == [(contact_id(1), "failed", "HTTP_503")]


def test_a_terminal_failure_is_answered_failed_before_it_stops_the_run() -> None:
    w = world()
    w.source.put(1)
    w.dialer.failures = [TerminalError("credentials refused", code="AUTH")]
    with pytest.raises(TerminalError):
        w.engine.sync()
    assert _events(w, "answered") == [(contact_id(1), "failed", "AUTH")]
