"""Two bugs of the engine before its split, each shown on the real (SQLite) store."""

from __future__ import annotations

import shutil
from pathlib import Path

from dialsync.destinations.base import Capabilities
from dialsync.engine import EngineOptions, SyncEngine
from dialsync.errors import AmbiguousWriteError
from dialsync.plan import DryRunDestination
from dialsync.store.store import open_store
from tests.unit.engine.fakes import Clock, FakeDialer, FakeSource, Remote, contact_id, mapper


def test_no_source_call_comes_from_a_push_thread(tmp_path: Path) -> None:
    """The Salesforce client is not thread-safe: while the main thread pages the window, a
    push thread that meets a duplicate must not ask Salesforce about what its scan found."""
    clock = Clock()
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    source = FakeSource(clock)
    dest = FakeDialer(count_known=False)  # no count: no scan before the pull
    engine = SyncEngine(
        source=source,
        destinations=[dest],
        store=store,
        options=EngineOptions(mapper=mapper, push_threads=2),
        clock=clock,
    )
    source.put(1)
    engine.sync()
    clock.advance(3600)
    # By hand, meanwhile: a record for the contact about to be created, and one of ours
    # (by provider) that names a contact the table never saw.
    created = source.put(2)
    dest.records[created] = Remote("r-2", None)
    dest.records[contact_id(9)] = Remote("r-9", None)
    engine.sync()
    assert dest.sends("create") == [1, 1]  # contact 2 met the duplicate in a push thread
    assert dest.records[created].record_id == "r-2"  # adopted
    assert ("by_ids", "MainThread") in source.calls  # asked about what the scan found
    threads = {thread for _, thread in source.calls}
    assert threads == {"MainThread"}, source.calls
    store.engine.dispose()


def test_the_plan_waits_for_a_lost_create_as_long_as_the_sync(tmp_path: Path) -> None:
    """A create whose answer was lost may still land for a while (Talkdesk: twice its
    timeout); `plan` must not count it as a create that `sync` would not make yet."""
    clock = Clock()
    live_db, plan_db = tmp_path / "live.db", tmp_path / "plan.db"
    store = open_store(f"sqlite:///{live_db}", clock=clock)
    source = FakeSource(clock)
    source.put(1)
    dest = FakeDialer(
        unique_by_external_id=False,  # a create sent again would duplicate: it waits
        count_known=False,
        capabilities=Capabilities(
            max_batch=100, native_upsert=False, full_replacement=False, settle_seconds=60
        ),
    )
    options = EngineOptions(mapper=mapper, push_threads=1, retry_base_seconds=1)
    dest.failures = [AmbiguousWriteError("timed out after sending")]
    SyncEngine(source=source, destinations=[dest], store=store, options=options, clock=clock).sync()
    store.engine.dispose()
    shutil.copy(live_db, plan_db)
    clock.advance(10)  # past the retry's backoff, within the 60 s the create may still land

    copy = open_store(f"sqlite:///{plan_db}", clock=clock)
    dry = DryRunDestination(dest)
    plan = SyncEngine(
        source=source, destinations=[dry], store=copy, options=options, clock=clock
    ).sync()
    copy.engine.dispose()
    live = open_store(f"sqlite:///{live_db}", clock=clock)
    sync = SyncEngine(
        source=source, destinations=[dest], store=live, options=options, clock=clock
    ).sync()
    live.engine.dispose()
    assert sync.counts["created"] == 0 and dest.sends("create") == [1]
    assert plan.counts["created"] == sync.counts["created"]
    assert dry.sent["create"] == []
