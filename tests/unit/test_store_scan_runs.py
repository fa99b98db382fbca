"""Adoption (what a scan of the dialer's list teaches), the cursor and the runs, on a real
database (SQLite file, and Postgres)."""

from __future__ import annotations

from datetime import timedelta

from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Status
from dialsync.store.protocol import Cursor
from dialsync.store.store import SqlSyncStore, open_store
from tests.unit.stores import T0, Clock, sent, want


def synced(store: SqlSyncStore, *ids: str) -> None:
    td = store.target("talkdesk", "L")
    td.apply([want(i) for i in ids], run_id=None)
    rows = td.claim("create", 100, 60.0)
    td.record(
        [
            transitions.created(
                transitions.Sent(r.id, r.desired, r.payload_hash, r.attempts),
                f"R-{r.external_id}",
                None,
            )
            for r in rows
        ]
    )


def test_adopt_sorts_what_the_scan_found(store: SqlSyncStore) -> None:
    synced(store, "003A", "003B")
    td = store.target("talkdesk", "L")
    td.apply([want("003C")], run_id=None)  # queued, its record id unknown
    found = [
        ("003A", "R-003A", "h-" + '{"a": 1}'),  # as the row wants: nothing to do
        ("003B", "R-003B", "hand-edited"),  # edited in the dialer: sent again
        ("003C", "R-003C", None),  # ours, id unknown to the table: adopted
        ("003A", "R-dup", None),  # a second record of 003A: an orphan
        ("003Z", "R-003Z", None),  # no row: unverified until the pull says
    ]
    assert td.adopt(found) == (2, 1, ["003Z"], 1)
    states = td.row_states(["003A", "003B", "003C", "003Z"])
    assert states["003A"].status == Status.SYNCED
    assert states["003B"].status == Status.PENDING
    assert (states["003C"].status, states["003C"].record_id) == (Status.PENDING, "R-003C")
    assert (states["003Z"].status, states["003Z"].desired) == (Status.UNVERIFIED, "absent")
    assert [rid for _, rid in td.orphans(10)] == ["R-dup"]
    assert td.adopt([("003A", "R-dup", None)]) == (0, 1, [], 0)
    assert len(td.orphans(10)) == 1  # recorded once
    assert td.count_in_dialer() == 4


def test_forget_missing_and_settle_uncertain_creates(store: SqlSyncStore, clock: Clock) -> None:
    synced(store, "003A", "003B")
    td = store.target("talkdesk", "L")
    td.apply([want("003C")], run_id=None)
    (c,) = td.claim("create", 10, 60.0)
    store.set_inflight([c.id], "create")
    td.record(
        [
            transitions.failed(
                sent(c),
                code="TIMEOUT",
                message=None,
                next_attempt_at=T0,
                uncertain_create=True,
            )
        ]
    )
    clock.now = T0 + timedelta(minutes=1)
    assert td.uncertain_creates() == 1
    assert td.claim("create", 10, 60.0) == []  # may exist: not sent again before a scan
    scan_started = clock.now
    clock.now += timedelta(seconds=5)
    assert td.forget_missing({"003A"}, scan_started) == 1  # 003B was removed by hand
    assert td.row_states(["003B"])["003B"].record_id is None
    assert td.settle_uncertain_creates(scan_started) == 1
    assert td.uncertain_creates() == 0
    assert sorted(r.external_id for r in td.claim("create", 10, 60.0)) == ["003B", "003C"]


def test_an_uncertain_create_without_a_write_ahead_is_settled_by_a_scan(
    store: SqlSyncStore, clock: Clock
) -> None:
    """A destination that upserts is not marked in flight before its create (sending again
    cannot duplicate), but an unanswered item still marks the create uncertain: a scan that
    began after that answer settles it. It used to stay uncertain for ever (inflight_at NULL
    is never < the scan's start): never claimed again, unsettled in every run."""
    td = store.target("everbridge", "L")
    td.apply([want("003C")], run_id=None)
    (c,) = td.claim("create", 10, 60.0)
    td.record(
        [
            transitions.failed(
                sent(c), code="UNKNOWN", message=None, next_attempt_at=T0, uncertain_create=True
            )
        ]
    )
    assert td.uncertain_creates() == 1
    assert td.settle_uncertain_creates(T0) == 0  # a scan begun before the answer: not yet
    clock.now = T0 + timedelta(minutes=1)
    assert td.settle_uncertain_creates(clock.now) == 1
    assert (td.uncertain_creates(), td.count_unsettled()) == (0, 1)
    assert [r.external_id for r in td.claim("create", 10, 60.0)] == ["003C"]


def test_list_scanned_is_replaced(store: SqlSyncStore) -> None:
    td = store.target("talkdesk", "L")
    td.set_list_scanned("EXTERNAL", 2)
    td.set_list_scanned("EXTERNAL")
    assert td.list_others() == (True, None)


def test_cursor_fields_set_alone_keep_the_others(store: SqlSyncStore) -> None:
    assert store.get_cursor("c") == Cursor(None, None, None, None)
    store.set_cursor("c", modstamp=T0, last_id="003A")
    store.set_cursor("c", reconciled_at=T0 + timedelta(hours=1))
    assert store.get_cursor("c") == Cursor(T0, "003A", None, T0 + timedelta(hours=1))
    assert store.get_cursor("other") == Cursor(None, None, None, None)


def test_runs_recorded_read_back_and_pruned(db_url: str, clock: Clock) -> None:
    store = SqlSyncStore(open_store(db_url).engine, clock, runs_kept=3)
    try:
        sync = store.start_run("sync")
        store.finish_run(sync, "ok", {"created": 2, "bogus": 9}, error_kind=None)
        pushes = [store.start_run("push") for _ in range(2)]
        for run_id in pushes:
            store.finish_run(run_id, "failed", {}, error="down", error_kind="transient")
        runs = store.recent_runs(10)
        assert [r["id"] for r in runs] == [*reversed(pushes), sync]
        assert runs[-1]["created"] == 2
        assert runs[0]["error_kind"] == "transient"
        [head] = store.runs_with_pushes(10)
        assert head["id"] == sync
        assert [p["id"] for p in head["pushes"]] == pushes
        assert store.last_success() == {"sync": T0}
        assert [r["kind"] for r in store.recent_runs(10, ["sync"])] == ["sync"]

        # a run this process left "running" is ended by the next start; old runs are pruned,
        # but the last of each kind and status is kept
        left = store.start_run("pull")
        newest = store.start_run("pull")
        runs = {r["id"]: r for r in store.recent_runs(10)}
        assert runs[left]["status"] == "interrupted"
        assert sync in runs  # the last ok sync
        assert pushes[0] not in runs  # older than the last 3, and not the last failed push
        assert newest in runs
    finally:
        store.engine.dispose()
