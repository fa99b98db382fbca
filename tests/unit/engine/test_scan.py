"""The scan room: records the table did not know are adopted, hand edits are undone."""

from __future__ import annotations

from dialsync.destinations.base import ItemResult, Outcome
from dialsync.engine import SyncEngine
from dialsync.rowstate.decide import Status
from tests.unit.engine.fakes import Remote, contact_id, world


def test_a_list_holding_our_records_already_is_adopted_not_duplicated() -> None:
    w = world()
    cid = w.source.put(1)
    w.dialer.records[cid] = Remote("r-old", {"first_name": "stale"})  # a lost state database
    report = w.engine.sync()
    assert w.dialer.scans == 1
    assert w.dialer.sends("create") == [] and w.dialer.sends("update") == [1]
    assert w.dialer.records[cid].record_id == "r-old"
    assert report.counts["updated"] == 1


def test_a_create_refused_as_a_duplicate_is_adopted_after_the_push() -> None:
    w = world(count_known=False)  # no count: nothing tells the run to scan beforehand
    w.source.put(1)
    w.engine.sync()
    scans = w.dialer.scans
    cid = contact_id(2)
    w.dialer.records[cid] = Remote("r-theirs", None)  # someone created it meanwhile
    w.clock.advance(3600)
    w.source.put(2)
    report = w.engine.sync()
    assert w.dialer.scans == scans + 1  # one scan, to adopt it
    row = w.store.row("dialer", cid)
    assert row["record_id"] == "r-theirs" and row["claimed_by"] is None
    assert report.counts["rejected"] == 0
    w.clock.advance(60)
    w.engine.sync()  # the adopted record is sent as an update
    assert w.dialer.records[cid].payload is not None
    assert list(w.dialer.records) == [contact_id(1), cid]


def test_a_create_refused_as_a_duplicate_of_a_record_not_ours_is_blocked() -> None:
    w = world(count_known=False)
    w.source.put(1)
    w.engine.sync()
    w.clock.advance(3600)
    cid = w.source.put(2)
    w.dialer.create = lambda items: [  # type: ignore[method-assign]
        ItemResult(i.external_id, Outcome.DUPLICATE, code="PHONE_TAKEN") for i in items
    ]
    report = w.engine.sync()
    row = w.store.row("dialer", cid)
    assert (row["status"], row["reason_code"], row["claimed_by"]) == (
        Status.BLOCKED,
        "PHONE_TAKEN",
        None,
    )
    assert report.counts["rejected"] == 1


def test_a_record_removed_by_hand_is_created_again() -> None:
    w = world()
    for n in range(3):
        w.source.put(n)
    w.engine.sync()
    del w.dialer.records[contact_id(1)]  # the list's count no longer adds up: scanned
    w.clock.advance(60)
    report = w.engine.sync()
    assert contact_id(1) in w.dialer.records and report.counts["created"] == 1
    assert w.store.row("dialer", contact_id(1))["status"] == Status.SYNCED


def test_records_a_scan_does_not_know_are_asked_of_the_source() -> None:
    w = world()
    w.source.put(1)
    w.engine.sync()
    stranger = w.source.put(7)  # in Salesforce; its record in the list, but not in the table
    w.dialer.records[stranger] = Remote("r-7", None)
    unknown = contact_id(8)  # in the list, no such contact
    w.dialer.records[unknown] = Remote("r-8", None)
    w.clock.advance(60)
    w.engine.sync()
    assert w.store.row("dialer", stranger)["record_id"] == "r-7"
    assert w.store.row("dialer", stranger)["status"] == Status.SYNCED
    assert unknown not in w.dialer.records  # no contact: removed
    assert ("by_ids", "MainThread") in w.source.calls


def test_records_a_push_only_scan_finds_are_asked_of_the_source_by_the_next_run() -> None:
    """A push run has no source open (a worker that only pushed so far): the records its scan
    found that the table did not know wait in the table as unverified, and the next run that
    reads the source asks about them. They were dropped: a record of a contact gone from
    Salesforce stayed dialable until a full pass."""
    w = world(count_known=False)  # no count: nothing but the duplicate makes a run scan
    w.source.put(1)
    w.engine.sync()
    w.clock.advance(3600)
    cid = w.source.put(2)
    w.engine.pull()  # its create is due
    w.dialer.records[cid] = Remote("r-theirs", None)  # the create will clash: a scan
    gone = contact_id(9)  # a record of ours in the list, its contact not in Salesforce
    w.dialer.records[gone] = Remote("r-9", None)
    pusher = SyncEngine(  # another process: it has only pushed
        source=w.source,
        destinations=[w.dialer],
        store=w.store,
        options=w.engine.options,
        clock=w.clock,
        rng=lambda: 1.0,
    )
    pusher.push()
    assert w.store.row("dialer", gone)["status"] == Status.UNVERIFIED
    w.clock.advance(60)
    w.engine.sync()
    assert gone not in w.dialer.records  # no contact: removed


def test_a_record_the_table_does_not_know_is_asked_within_the_scope() -> None:
    """A scan finds a record of ours whose contact the table has no row for (here: the row
    was lost); the contact exists but is outside SOQL_WHERE, and no window will read it.
    Asking the source about it must ask the scope too: it is removed, not adopted."""
    w = world(scoped=True)
    w.source.scope = lambda c: c.fields.get("Department") != "Prospects"
    inside = w.source.put(1)
    outside = w.source.put(2, Department="Prospects")
    w.clock.advance(10)
    w.engine.sync()
    w.clock.advance(3600)
    later = w.source.put(3)  # the cursor moves past the lookback: 1 and 2 are not read again
    w.engine.sync()
    assert list(w.dialer.records) == [inside, later]
    lost = [k for k, r in w.store.rows.items() if r["external_id"] == outside]
    for k in lost:  # the table forgot the contact
        del w.store.rows[k]
    w.clock.advance(10)
    w.dialer.records[outside] = Remote("r-hand", {"first_name": "First2"})  # added by hand
    report = w.engine.sync()
    assert w.dialer.scans == 1  # the list's count changed: it was scanned
    assert report.counts["queried"] == 1  # the record's contact only, not a window
    assert list(w.dialer.records) == [inside, later], report
