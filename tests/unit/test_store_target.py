"""``store.target(destination, list_id)``: the rows of one list, bound once.

On SQLite (a file in a temporary directory) and on Postgres (a database of its own)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Desired, Status, Verdict
from dialsync.store import protocol
from dialsync.store.store import SqlSyncStore
from tests.unit.stores import T0, sent, want


def test_target_is_a_target_store_bound_to_its_list(store: SqlSyncStore) -> None:
    td = store.target("talkdesk", "L1")
    assert isinstance(td, protocol.TargetStore)
    assert (td.destination, td.list_id) == ("talkdesk", "L1")

    assert Counter(td.apply([want("003A"), want("003B")], run_id=None)) == {Verdict.CREATE: 2}
    # the other list and the other destination see none of it
    assert store.target("talkdesk", "L2").count_due() == 0
    assert store.target("everbridge", "L1").count_due() == 0
    assert td.count_due() == 2
    # by op: what claim(op) would take (the push's background threads ask before claiming)
    assert td.count_due("create") == 2 and td.count_due("update") == td.count_due("delete") == 0
    assert td.count_unsettled() == 2
    assert set(td.row_states(["003A", "003B", "003C"])) == {"003A", "003B"}

    rows = td.claim("create", 10, 60.0)
    assert [r.external_id for r in rows] == ["003A", "003B"]
    assert all(isinstance(r, protocol.WorkRow) for r in rows)
    assert td.claim("create", 10, 60.0) == []  # claimed


def _begins(store: SqlSyncStore) -> list[int]:
    count = [0]

    def begin(_conn: Any) -> None:
        count[0] += 1

    event.listen(store.engine, "begin", begin)
    return count


def test_record_with_unblock_is_one_transaction(store: SqlSyncStore) -> None:
    """An answer that changed a record frees the list's blocked rows in the transaction that
    records it (it was two: a crash between them left blocked rows waiting their backoff)."""
    td = store.target("talkdesk", "L1")
    td.apply([want("003A"), want("003B")], run_id=None)
    a, b = td.claim("create", 10, 60.0)
    later = T0 + timedelta(hours=1)
    blocked = transitions.blocked(sent(b), code="PHONE", message="held", next_attempt_at=later)
    td.record([blocked])
    assert td.row_states(["003B"])["003B"].status == Status.BLOCKED
    assert td.claim("create", 10, 60.0) == []  # 003A is claimed, 003B waits for its backoff

    begins = _begins(store)
    td.record([transitions.created(sent(a), "R1", None)], unblock=True)
    assert begins[0] == 1
    assert td.record_ids(["003A"]) == {"003A": "R1"}
    (again,) = td.claim("create", 10, 60.0)  # the blocked row is due now
    assert again.external_id == "003B"

    # without unblock, a blocked row keeps its time
    td.record([transitions.blocked(sent(again), code="P", message="m", next_attempt_at=later)])
    td.record([], unblock=False)
    assert td.claim("create", 10, 60.0) == []


def test_drop_orphans_with_unblock(store: SqlSyncStore) -> None:
    td = store.target("talkdesk", "L1")
    td.apply([want("003A")], run_id=None)
    (a,) = td.claim("create", 10, 60.0)
    td.record([transitions.created(sent(a), "R1", None)])
    # a second record with the same external id: an orphan to delete
    assert td.adopt([("003A", "R2", None)]) == (0, 1, [], 0)
    [(orphan, record)] = td.orphans(10)
    assert record == "R2"
    assert store.target("talkdesk", "L2").orphans(10) == []
    td.apply([want("003B")], run_id=None)
    (b,) = td.claim("create", 10, 60.0)
    td.record(
        [
            transitions.blocked(
                sent(b), code="X", message="held", next_attempt_at=T0 + timedelta(hours=1)
            )
        ]
    )
    begins = _begins(store)
    td.drop_orphans([orphan], unblock=True)
    assert begins[0] == 1
    assert td.orphans(10) == []
    assert td.count_due() == 1


def test_list_state_and_counts_through_the_target(store: SqlSyncStore) -> None:
    td = store.target("talkdesk", "L1")
    assert td.list_others() == (False, None)
    td.set_list_scanned("external_id", others=3)
    assert td.list_others() == (True, 3)
    assert store.target("talkdesk", "L2").list_others() == (False, None)
    assert td.count_in_dialer() == 0
    assert td.uncertain_creates() == 0
    assert td.unblock() == 0
    assert td.retry_rejected() == 0


def test_one_apply_may_mix_forced_and_stampless_contacts(store: SqlSyncStore) -> None:
    """New rows whose wants set different columns (a resync sets sent_hash, a contact known
    gone has no stamp) are inserted together; one executemany of unlike rows used to fail."""
    td = store.target("talkdesk", "L1")
    forced = Desired("003B", T0, True, '{"a": 1}', "h", force=True)
    gone = Desired("003C", None, False, reason_code="deleted")
    verdicts = td.apply([want("003A"), forced, gone], run_id=None)
    assert verdicts == [Verdict.CREATE, Verdict.CREATE, Verdict.SKIP]
    states = td.row_states(["003A", "003B", "003C"])
    assert [states[i].status for i in ("003A", "003B", "003C")] == [
        Status.PENDING,
        Status.PENDING,
        Status.SKIPPED,
    ]
    assert states["003C"].source_modstamp is None
