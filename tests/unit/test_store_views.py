"""The read-only views (`dialsync status`, `errors`, `explain`, the metrics, the plan's copy)
on a real database (SQLite file, and Postgres)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Desired, Status
from dialsync.store.protocol import ProblemFilter
from dialsync.store.store import SqlSyncStore, open_store
from dialsync.store.views import copy_state, rows_by_ids
from tests.unit.stores import T0, sent


def fill(store: SqlSyncStore) -> None:
    """talkdesk:L  A synced, B rejected, C retrying 3 times, D skipped (do not call),
                  E in the list but must not be called, its removal failed once;
    everbridge:M  A rejected."""
    td = store.target("talkdesk", "L")
    wants = [Desired(i, T0, True, '{"a": 1}', "h1") for i in ("003A", "003B", "003C")]
    td.apply([*wants, Desired("003D", T0, False, reason_code="do_not_call")], run_id=None)
    a, b, c = td.claim("create", 10, 60.0)
    later = T0 + timedelta(minutes=1)
    td.record(
        [
            transitions.created(sent(a), "R1", None),
            transitions.rejected(sent(b), code="INVALID_PHONE", message="no"),
            transitions.failed(
                transitions.Sent(c.id, c.desired, c.payload_hash, 2),
                code="HTTP_503",
                message=None,
                next_attempt_at=later,
                uncertain_create=False,
            ),
        ]
    )
    td.apply([Desired("003E", T0, True, '{"a": 1}', "h1")], run_id=None)
    (e,) = td.claim("create", 10, 60.0)
    td.record([transitions.created(sent(e), "R5", None)])
    opted_out = T0 + timedelta(seconds=1)
    td.apply([Desired("003E", opted_out, False, reason_code="do_not_call")], run_id=None)
    (e,) = td.claim("delete", 10, 60.0)
    td.record(
        [
            transitions.failed(
                sent(e),
                code="DELETE_FAILED",
                message="refused",
                next_attempt_at=later,
                uncertain_create=False,
            )
        ]
    )
    eb = store.target("everbridge", "M")
    eb.apply([Desired("003A", T0, True, '{"b": 1}', "h2")], run_id=None)
    (ea,) = eb.claim("create", 10, 60.0)
    eb.record([transitions.rejected(sent(ea), code="INVALID_PHONE", message="no")])


def test_counts_by_state_and_stuck_rows(store: SqlSyncStore) -> None:
    fill(store)
    assert store.status_counts() == {
        ("talkdesk", "L", Status.SYNCED): 1,
        ("talkdesk", "L", Status.REJECTED): 1,
        ("talkdesk", "L", Status.RETRYING): 2,
        ("talkdesk", "L", Status.SKIPPED): 1,
        ("everbridge", "M", Status.REJECTED): 1,
    }
    # C: 3 tries, stuck, not a removal; E: a removal that failed (once: not stuck yet)
    assert store.stuck_counts() == {("talkdesk", "L"): (1, 1)}


def test_problems_errors_first_and_filtered(store: SqlSyncStore) -> None:
    fill(store)
    rows = store.problem_rows()
    assert [(r["destination"], r["external_id"], r["status"]) for r in rows] == [
        ("everbridge", "003A", Status.REJECTED),
        ("talkdesk", "003B", Status.REJECTED),
        ("talkdesk", "003C", Status.RETRYING),
        ("talkdesk", "003E", Status.RETRYING),
        ("talkdesk", "003D", Status.SKIPPED),
    ]
    # only E must leave the list and is still in it (`dialsync errors`: STILL IN THE LIST)
    assert [r["external_id"] for r in rows if r["must_remove"]] == ["003E"]
    only_list = ProblemFilter(destinations=["talkdesk:L"], statuses=[Status.REJECTED])
    assert [r["external_id"] for r in store.problem_rows(only_list)] == ["003B"]
    assert store.problem_summary(ProblemFilter()) == [
        {"status": Status.REJECTED, "reason_code": "INVALID_PHONE", "count": 2},
        {"status": Status.RETRYING, "reason_code": "DELETE_FAILED", "count": 1},
        {"status": Status.RETRYING, "reason_code": "HTTP_503", "count": 1},
        {"status": Status.SKIPPED, "reason_code": "do_not_call", "count": 1},
    ]
    by_reason = ProblemFilter(reasons=["do_not_call"], destinations=["talkdesk"])
    assert store.problem_summary(by_reason) == [
        {"status": Status.SKIPPED, "reason_code": "do_not_call", "count": 1}
    ]


def test_one_contact_everywhere_and_by_ids(store: SqlSyncStore) -> None:
    fill(store)
    everywhere = store.rows_for_contact("003A")
    assert set(everywhere) == {("talkdesk", "L"), ("everbridge", "M")}
    assert everywhere[("talkdesk", "L")].payload == {"a": 1}
    assert everywhere[("everbridge", "M")].status == Status.REJECTED
    found = rows_by_ids(store, "talkdesk", "L", ["003A", "003A", "003Z"])
    assert list(found) == ["003A"]
    assert found["003A"].record_id == "R1"


def test_copy_state_is_a_snapshot_for_the_plan(store: SqlSyncStore, tmp_path: Path) -> None:
    fill(store)
    store.set_cursor("c", modstamp=T0)
    copy = open_store(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        copy_state(store, copy)
        assert copy.status_counts() == store.status_counts()
        assert copy.get_cursor("c") == store.get_cursor("c")
        assert rows_by_ids(copy, "talkdesk", "L", ["003A"]) == rows_by_ids(
            store, "talkdesk", "L", ["003A"]
        )
    finally:
        copy.engine.dispose()
