"""The pull room: a window read into the table, the cursor after each durable batch, deletes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from dialsync.engine import PULL_BATCH
from dialsync.rowstate.decide import Desired, Status, Verdict
from tests.unit.engine.fakes import contact_id, world
from tests.unit.engine.memory_store import MemoryTarget


def test_a_first_sync_creates_every_contact_and_moves_the_cursor_to_the_last() -> None:
    w = world()
    for n in range(3):
        w.source.put(n)
        w.clock.advance(1)
    report = w.engine.sync()
    assert report.counts["queried"] == 3 and report.counts["created"] == 3
    assert set(w.dialer.records) == {contact_id(n) for n in range(3)}
    cursor = w.store.get_cursor(w.source.cursor_name)
    last = w.source.contacts[contact_id(2)]
    assert (cursor.modstamp, cursor.last_id) == (last.system_modstamp, last.id)
    assert w.store.runs[report.run_id or 0]["status"] == "ok"


def test_the_cursor_moves_only_past_batches_already_in_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    for n in range(PULL_BATCH + 10):
        w.source.put(n)
        w.clock.advance(1)
    applied: list[int] = []
    real_apply = MemoryTarget.apply

    def apply(self: MemoryTarget, wants: Sequence[Desired], *a: object, **k: bool):  # type: ignore[no-untyped-def]
        if applied:
            raise RuntimeError("the database went away")  # the second page is never written
        applied.append(len(wants))
        return real_apply(self, wants, *a, **k)  # type: ignore[arg-type]

    moves: list[tuple[datetime, str, bool]] = []
    real_move = w.store.move_cursor

    def move_cursor(name: str, *, modstamp: datetime, last_id: str) -> None:
        in_table = any(r["external_id"] == last_id for r in w.store.rows.values())
        moves.append((modstamp, last_id, in_table))
        real_move(name, modstamp=modstamp, last_id=last_id)

    monkeypatch.setattr(MemoryTarget, "apply", apply)
    monkeypatch.setattr(w.store, "move_cursor", move_cursor)
    with pytest.raises(RuntimeError):
        w.engine.sync()
    assert applied == [PULL_BATCH]
    assert moves == [(w.source.contacts[contact_id(PULL_BATCH - 1)].system_modstamp,
                      contact_id(PULL_BATCH - 1), True)]  # fmt: skip
    assert w.store.get_cursor(w.source.cursor_name).last_id == contact_id(PULL_BATCH - 1)
    assert w.store.runs[1]["status"] == "failed"


def test_an_incremental_sync_reads_from_the_cursor_less_the_lookback() -> None:
    w = world()
    for n in range(4):
        w.source.put(n)
    w.clock.advance(3600)
    w.source.put(4)  # the cursor stops at this one's modstamp
    w.engine.sync()
    w.clock.advance(3600)
    w.source.put(1, phone="+14155550199")
    report = w.engine.sync()
    # contacts 0, 2 and 3 are older than the cursor less the lookback: not read again
    assert report.counts["queried"] == 2
    assert (report.counts["updated"], report.counts["unchanged"]) == (1, 1)
    assert w.dialer.records[contact_id(1)].payload == {
        "first_name": "First1",
        "last_name": "Last1",
        "phones": ["+14155550199"],
    }


def test_a_contact_deleted_in_the_source_is_removed_from_the_list() -> None:
    w = world()
    for n in range(3):
        w.source.put(n)
    w.engine.sync()  # a full pass: reconciled
    w.clock.advance(3600)
    gone = w.source.remove(2)
    report = w.engine.sync()
    assert gone not in w.dialer.records
    assert report.counts["deleted"] == 1 and not report.reconciled
    row = w.store.row("dialer", gone)
    assert (row["status"], row["reason_code"], row["record_id"]) == (
        Status.REMOVED,
        "deleted",
        None,
    )
    cursor = w.store.get_cursor(w.source.cursor_name)
    assert cursor.deleted_until == w.clock()


def test_a_delete_log_that_no_longer_reaches_the_cursor_reconciles_every_id() -> None:
    w = world()
    for n in range(3):
        w.source.put(n)
    w.engine.sync()
    w.clock.advance(timedelta(days=20).total_seconds())
    cid = contact_id(1)
    del w.source.contacts[cid]  # deleted long ago: the delete log has forgotten it
    report = w.engine.sync()
    assert report.reconciled
    assert cid not in w.dialer.records
    assert w.store.row("dialer", cid)["reason_code"] == "not_in_salesforce"
    assert ("deleted", "MainThread") not in w.source.calls  # the log was not asked at all


def test_a_dry_run_decides_without_writing() -> None:
    w = world()
    w.source.put(1)
    report = w.engine.sync(dry_run=True)
    assert report.counts["created"] == 1 and report.run_id is None
    assert not w.store.rows and not w.dialer.calls
    assert w.store.get_cursor(w.source.cursor_name).modstamp is None
    assert Verdict.CREATE == "create"
