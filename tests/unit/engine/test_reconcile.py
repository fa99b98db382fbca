"""Reconciliation: rows whose contact the source no longer holds are confirmed, then removed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from dialsync.rowstate.decide import Status
from tests.unit.engine.fakes import World, contact_id, world


def test_a_full_pass_removes_records_whose_contact_is_gone_without_a_delete() -> None:
    w = world()
    for n in range(4):
        w.source.put(n)
    w.engine.sync()
    del w.source.contacts[contact_id(3)]  # gone, and the delete log never said so
    w.clock.advance(60)
    report = w.engine.sync(full=True)
    assert contact_id(3) not in w.dialer.records
    assert report.counts["deleted"] == 1
    row = w.store.row("dialer", contact_id(3))
    assert (row["status"], row["reason_code"]) == (Status.REMOVED, "not_in_salesforce")
    cursor = w.store.get_cursor(w.source.cursor_name)
    assert cursor.reconciled_at == cursor.deleted_until == w.clock().replace(microsecond=0)


def edited_after_the_window(w: World, cid: str, **fields: Any) -> None:
    """``cid`` is edited (with ``fields``) as the next window is read, its stamp past the
    window's end: that window does not return it."""
    real_window = w.source.window

    def window(fields_read: list[str], start: datetime, end: datetime) -> Iterator[Any]:
        if fields:
            current = w.source.contacts[cid]
            w.source.contacts[cid] = current.model_copy(
                update={
                    "fields": {**current.fields, **fields},
                    "system_modstamp": end + timedelta(seconds=1),
                }
            )
        for contact in real_window(fields_read, start, end):
            if contact.id != cid:
                yield contact

    w.source.window = window  # type: ignore[method-assign]


def test_an_unseen_row_whose_contact_is_still_there_is_kept() -> None:
    w = world()
    for n in range(3):
        w.source.put(n)
    w.engine.sync()
    w.clock.advance(60)
    # Edited after the window's end: the full pass does not see it, the check by Id does.
    edited_after_the_window(w, contact_id(1))
    w.engine.sync(full=True)
    assert contact_id(1) in w.dialer.records
    assert w.store.row("dialer", contact_id(1))["status"] == Status.SYNCED


def test_a_sync_never_reconciled_before_lists_every_id() -> None:
    w = world()
    for n in range(3):
        w.source.put(n)
    w.engine.sync()
    w.store.cursors[w.source.cursor_name]["reconciled_at"] = None  # an older version's cursor
    del w.source.contacts[contact_id(0)]
    w.clock.advance(60)
    report = w.engine.sync()
    assert report.reconciled
    assert contact_id(0) not in w.dialer.records
    assert w.store.get_cursor(w.source.cursor_name).reconciled_at == w.clock()


def test_the_services_reconcile_is_a_full_pass() -> None:
    w = world()
    w.source.put(1)
    w.engine.sync()
    assert w.dialer.scans == 0  # an empty list, new to the table: nothing to adopt
    w.clock.advance(60)
    report = w.engine.reconcile()
    assert report.kind == "reconcile" and report.counts["queried"] == 1
    assert w.dialer.scans == 1  # the list is compared with the table
    assert w.store.runs[report.run_id or 0]["status"] == "ok"


def test_a_full_pass_lists_the_ids_once_and_asks_the_scope_of_what_it_re_reads() -> None:
    """SOQL_WHERE: the Ids in scope are listed once, for the window. A contact edited after
    the window's end (here: moved out of scope while the window is read) is re-read by Id,
    and its scope is asked then, of its Id alone: as it is now, not as the listing had it."""
    w = world(scoped=True)
    w.source.scope = lambda c: c.fields.get("Type") != "Prospect"
    for n in range(3):
        w.source.put(n)
    w.engine.sync()
    w.clock.advance(60)
    edited_after_the_window(w, contact_id(1), Type="Prospect")  # after the listing too
    w.source.calls.clear()
    w.engine.sync(full=True)
    called = [method for method, _ in w.source.calls]
    assert called.count("ids") == 1 and called.count("in_scope") == 1
    assert contact_id(1) not in w.dialer.records
    row = w.store.row("dialer", contact_id(1))
    assert (row["status"], row["reason_code"]) == (Status.REMOVED, "out_of_scope")
    assert {contact_id(0), contact_id(2)} <= set(w.dialer.records)
