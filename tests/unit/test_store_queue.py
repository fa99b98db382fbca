"""The work queue on a real database (SQLite file, and Postgres): answers recorded
compare-and-set in one UPDATE per row, what counts as unsettled, claims of dead owners."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, update

from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Status
from dialsync.store import protocol
from dialsync.store.store import SqlSyncStore
from dialsync.store.tables import sync_records
from tests.unit.stores import T0, sent, want


def updates_of(store: SqlSyncStore) -> list[int]:
    """Rows written by each UPDATE of the sync table (an executemany counts its rows)."""
    seen: list[int] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE SYNC_RECORDS"):
            seen.append(len(params) if many else 1)

    event.listen(store.engine, "before_cursor_execute", capture)
    return seen


def test_the_store_implements_the_protocol(store: SqlSyncStore) -> None:
    assert isinstance(store, protocol.SyncStore)
    assert isinstance(store.target("talkdesk", "L"), protocol.TargetStore)


def test_an_answer_is_one_update_per_row_and_compare_and_set(store: SqlSyncStore) -> None:
    """Rows whose contact changed while the create was in the air keep the dialer's facts and
    stay due; the others are synced. One UPDATE per row (it was two: held, then moved)."""
    td = store.target("talkdesk", "L")
    td.apply([want(f"003{i}") for i in range(4)], run_id=None)
    rows = td.claim("create", 10, 60.0)
    assert len(rows) == 4
    td.apply([want("0031", '{"a": 2}'), want("0032", '{"a": 2}')], run_id=None)  # edited
    written = updates_of(store)
    td.record([transitions.created(sent(r), f"R{i}", None) for i, r in enumerate(rows)])
    assert sum(written) == 4

    states = td.row_states([f"003{i}" for i in range(4)])
    assert {k: (s.status, s.record_id) for k, s in states.items()} == {
        "0030": (Status.SYNCED, "R0"),
        "0031": (Status.PENDING, "R1"),  # created, but holds the old payload: an update is due
        "0032": (Status.PENDING, "R2"),
        "0033": (Status.SYNCED, "R3"),
    }
    assert states["0030"].sent_hash == states["0030"].payload_hash
    assert states["0031"].sent_hash != states["0031"].payload_hash
    assert [r.external_id for r in td.claim("update", 10, 60.0)] == ["0031", "0032"]


def test_a_failure_keeps_its_time_and_a_moved_row_only_loses_its_claim(
    store: SqlSyncStore,
) -> None:
    td = store.target("talkdesk", "L")
    td.apply([want("003A"), want("003B")], run_id=None)
    a, b = td.claim("create", 10, 60.0)
    td.apply([want("003B", '{"a": 2}')], run_id=None)  # moved on before its answer
    later = T0 + timedelta(minutes=5)
    td.record(
        [
            transitions.failed(
                sent(a), code="E", message="boom", next_attempt_at=later, uncertain_create=False
            ),
            transitions.noop_settled(sent(b)),  # its otherwise is None: the row as it is
        ]
    )
    problems = {r["external_id"]: r for r in store.problem_rows()}
    assert problems["003A"]["status"] == Status.RETRYING
    assert problems["003A"]["attempts"] == 1
    assert problems["003A"]["next_attempt_at"] == later
    assert td.row_states(["003B"])["003B"].status == Status.PENDING
    assert [r.external_id for r in td.claim("create", 10, 60.0)] == ["003B"]  # released


def test_unsettled_counts_each_row_once(store: SqlSyncStore) -> None:
    td = store.target("talkdesk", "L")
    td.apply([want("003A"), want("003B"), want("003C")], run_id=None)
    assert td.count_unsettled() == 3
    a, b, c = td.claim("create", 10, 60.0)
    store.set_inflight([a.id, b.id], "create")  # pending and in flight: still one row each
    assert td.count_unsettled() == 3
    td.record([transitions.created(sent(c), "R3", None)])
    assert td.count_unsettled() == 2
    td.record(
        [
            transitions.failed(
                sent(a), code="T", message=None, next_attempt_at=T0, uncertain_create=True
            )
        ]
    )
    with store.tx() as conn:  # at rest, but its create's answer never came
        conn.execute(
            update(sync_records).where(sync_records.c.id == b.id).values(status=Status.SKIPPED)
        )
    assert td.count_unsettled() == 2
    assert store.target("talkdesk", "OTHER").count_unsettled() == 0


def test_dead_claims_are_freed_live_ones_kept(store: SqlSyncStore) -> None:
    td = store.target("talkdesk", "L")
    td.apply([want("003A"), want("003B"), want("003C")], run_id=None)
    (a,) = td.claim("create", 1, 60.0)
    other = SqlSyncStore(store.engine, store.clock)  # another store of this live process
    (b,) = other.target("talkdesk", "L").claim("create", 1, 60.0)
    assert b.external_id == "003B"
    (c,) = td.claim("create", 1, 60.0)
    with store.tx() as conn:  # a worker of this host that was killed
        conn.execute(
            update(sync_records)
            .where(sync_records.c.id == c.id)
            .values(claimed_by=f"{store.claim_prefix().split(':')[0]}:999999999:dead.x")
        )
    assert other.release_dead_claims() == 2  # its own earlier claim and the dead worker's
    assert [r.external_id for r in td.claim("create", 10, 60.0)] == ["003B", "003C"]
    assert a.external_id == "003A"
