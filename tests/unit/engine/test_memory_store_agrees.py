"""The memory store (``memory_store.py``) restates the work queue's rules in Python: which rows
are due, what each op claims, how an answer is recorded, what unblocking and retrying refused
rows do. The fast engine tests are only as true as that copy, so here hypothesis drives the
memory store and the real ``SqlSyncStore`` (SQLite) through the same sequences of operations
and every answer the engine reads must agree after each step.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Desired
from dialsync.store.protocol import TargetStore, WorkRow
from dialsync.store.store import SqlSyncStore, open_store
from tests.unit.engine.fakes import Clock
from tests.unit.engine.memory_store import MemoryStore

LISTS = (("talkdesk", "L1"), ("talkdesk", "L2"))
CONTACTS = [f"003{n:015d}" for n in range(4)]
PAYLOADS = ['{"a": 1}', '{"a": 2}', '{"a": 3}']
OPS = ("create", "update", "delete", "noop")
LEASE = 60.0
# What the engine records for a batch of each op (outcome.py, push.py, scan.py).
ANSWERS = {
    "create": ("created", "failed", "uncertain", "rejected", "blocked", "released", "not_sent"),
    "update": ("created", "vanished", "failed", "rejected", "recreate", "blocked", "not_sent"),
    "delete": ("removed", "failed", "not_sent", "released"),
    "noop": ("noop_settled", "released"),
}

wants = st.lists(
    st.tuples(
        st.sampled_from(range(len(CONTACTS))),
        st.booleans(),  # present
        st.sampled_from(range(len(PAYLOADS))),
        st.integers(0, 2),  # modstamp: a few distinct stamps, so re-reads happen
        st.booleans(),  # force (a resync)
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda w: w[0],
)
# Mostly the first list, so that steps meet the rows earlier steps left; the second one is
# there to show that no step reaches into another list.
one_list = st.sampled_from([0, 0, 0, 1])
STAMP = datetime(2026, 12, 1, tzinfo=UTC)
# The default budget runs in seconds; a search for a disagreement raises it (README: Development).
EXAMPLES = int(os.environ.get("DIALSYNC_STORE_EXAMPLES", "50"))
# Shrinking a failure to its shortest steps replays thousands of examples (minutes): on for an
# investigation only. Without it a failure still prints every step it took.
SHRINK = os.environ.get("DIALSYNC_STORE_SHRINK") == "1"


def answer(kind: str, row: WorkRow, next_at: datetime) -> transitions.Change:
    was = transitions.Sent(row.id, row.desired, row.payload_hash, row.attempts)
    if kind == "created":
        return transitions.created(was, f"R-{row.external_id}", row.record_id)
    if kind in ("failed", "uncertain"):
        return transitions.failed(
            was,
            code="T",
            message="boom",
            next_attempt_at=next_at,
            uncertain_create=kind == "uncertain",
        )
    if kind == "rejected":
        return transitions.rejected(was, code="BAD", message="no")
    if kind == "blocked":
        return transitions.blocked(was, code="DUP", message="held", next_attempt_at=next_at)
    if kind in ("released", "not_sent"):
        return transitions.released(row.id) if kind == "released" else transitions.not_sent(row.id)
    step: Callable[[transitions.Sent], transitions.Change] = {
        "removed": transitions.removed,
        "vanished": transitions.vanished,
        "recreate": transitions.recreate,
        "noop_settled": transitions.noop_settled,
    }[kind]
    return step(was)


# -- the two stores, side by side ----------------------------------------------------------------
Batch = tuple[int, str, list[WorkRow], list[WorkRow]]  # list, op, the memory rows, the SQL rows


class SameAnswers(RuleBasedStateMachine):
    """Each rule does one thing to both stores; the invariant compares what the engine reads."""

    def __init__(self, sql: SqlSyncStore, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.sql = sql
        self.memory = MemoryStore(clock)
        self.claimed: list[Batch] = []  # batches claimed and not answered yet

    def targets(self, index: int) -> tuple[TargetStore, TargetStore]:
        return self.memory.target(*LISTS[index]), self.sql.target(*LISTS[index])

    @rule(index=one_list, wants=wants, mark_seen=st.booleans())
    def apply(
        self, index: int, wants: list[tuple[int, bool, int, int, bool]], mark_seen: bool
    ) -> None:
        desired = [
            Desired(
                CONTACTS[c],
                STAMP + timedelta(minutes=m),
                present,
                PAYLOADS[p] if present else None,
                f"h{p}" if present else None,
                reason_code=None if present else "do_not_call",
                force=force,
            )
            for c, present, p, m, force in wants
        ]
        mine, theirs = (t.apply(desired, 1, mark_seen=mark_seen) for t in self.targets(index))
        assert mine == theirs, "verdicts"

    @rule(index=one_list, op=st.sampled_from(["create", *OPS]), limit=st.integers(1, 3))
    def claim(self, index: int, op: str, limit: int) -> None:
        mine, theirs = (t.claim(op, limit, LEASE) for t in self.targets(index))
        assert [_work(r) for r in mine] == [_work(r) for r in theirs], f"claim({op})"
        if mine:
            self.claimed.append((index, op, mine, theirs))

    @precondition(lambda self: any(op == "create" for _, op, _, _ in self.claimed))
    @rule(which=st.integers(0, 3))
    def write_ahead(self, which: int) -> None:
        """The engine marks a create in flight before the dialer call (not every destination)."""
        creates = [b for b in self.claimed if b[1] == "create"]
        _, _, mine, theirs = creates[which % len(creates)]
        self.memory.set_inflight([r.id for r in mine], "create")
        self.sql.set_inflight([r.id for r in theirs], "create")

    @precondition(lambda self: bool(self.claimed))
    @rule(
        which=st.integers(0, 3),
        kinds=st.lists(st.integers(0, 6), min_size=1, max_size=3),  # cycled over the rows
        backoff=st.sampled_from([1.0, 30.0, 3600.0]),
        unblock=st.booleans(),
    )
    def answer(self, which: int, kinds: list[int], backoff: float, unblock: bool) -> None:
        index, op, mine, theirs = self.claimed.pop(which % len(self.claimed))
        menu = ANSWERS[op]
        next_at = self.clock() + timedelta(seconds=backoff)
        for target, rows in zip(self.targets(index), (mine, theirs), strict=True):
            changes = [
                answer(menu[kinds[i % len(kinds)] % len(menu)], r, next_at)
                for i, r in enumerate(rows)
            ]
            target.record(changes, unblock=unblock)

    @rule(index=one_list)
    def unblock(self, index: int) -> None:
        mine, theirs = (t.unblock() for t in self.targets(index))
        assert mine == theirs, "unblock"

    @rule(index=one_list)
    def retry_rejected(self, index: int) -> None:
        mine, theirs = (t.retry_rejected() for t in self.targets(index))
        assert mine == theirs, "retry_rejected"

    @rule(index=one_list)
    def settle(self, index: int) -> None:
        """A list scan that began now settles the creates still uncertain."""
        mine, theirs = (t.settle_uncertain_creates(self.clock()) for t in self.targets(index))
        assert mine == theirs, "settle_uncertain_creates"

    @rule(seconds=st.sampled_from([0.5, 1.0, 31.0, 61.0, 3601.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def agree(self) -> None:
        for index in range(len(LISTS)):
            mine, theirs = self.targets(index)
            for op in (None, *OPS):
                assert mine.count_due(op) == theirs.count_due(op), f"count_due({op})"
            assert mine.count_unsettled() == theirs.count_unsettled(), "count_unsettled"
            assert mine.count_held() == theirs.count_held(), "count_held"
            assert mine.uncertain_creates() == theirs.uncertain_creates(), "uncertain_creates"
            states = [
                {k: _state(v) for k, v in t.row_states(CONTACTS).items()} for t in (mine, theirs)
            ]
            assert states[0] == states[1], "row states"

    def teardown(self) -> None:
        self.sql.engine.dispose()


def _work(row: WorkRow) -> tuple[Any, ...]:
    """A claimed row without its id (each store numbers its rows)."""
    return (row.external_id, row.record_id, row.desired, row.payload, row.payload_hash,
            row.sent_hash, row.attempts, row.inflight, row.reason_code)  # fmt: skip


def _state(state: Any) -> tuple[Any, ...]:
    return (state.record_id, state.status, state.desired, state.payload_hash, state.sent_hash,
            state.source_modstamp, state.inflight)  # fmt: skip


def machines(tmp_path: Path) -> Callable[[], SameAnswers]:
    """Machines on copies of one migrated SQLite file (migrating per example is slow)."""
    template = tmp_path / "template.db"
    open_store(f"sqlite:///{template}").engine.dispose()
    made = itertools.count()

    def machine() -> SameAnswers:
        path = tmp_path / f"example-{next(made)}.db"
        shutil.copy(template, path)
        clock = Clock()
        return SameAnswers(open_store(f"sqlite:///{path}", clock=clock), clock)

    return machine


def test_the_memory_store_answers_as_the_sql_store(tmp_path: Path) -> None:
    run_state_machine_as_test(
        machines(tmp_path),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=40,
            deadline=None,
            derandomize=True,  # the same sequences in every run: CI never fails by chance
            database=None,
            phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if SHRINK else []),
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_disagreements_found_stay_fixed(tmp_path: Path) -> None:
    """The sequences on which the two stores disagreed, replayed step by step."""
    machine = machines(tmp_path)
    # A create marked uncertain by its answer alone (a destination that upserts writes no
    # in-flight mark first), then a list scan: the memory store compared None with the scan's
    # start (TypeError) and the SQL store never settled it.
    m = machine()
    steps: list[Callable[[], None]] = [
        lambda: m.apply(0, [(0, True, 0, 0, False)], mark_seen=True),
        lambda: m.claim(0, "create", 1),
        lambda: m.answer(0, [ANSWERS["create"].index("uncertain")], 1.0, unblock=False),
        lambda: m.advance(1.0),
        lambda: m.settle(0),
    ]
    for step in steps:
        step()
        m.agree()
    assert m.sql.target(*LISTS[0]).uncertain_creates() == 0
    m.teardown()
    # One apply of new contacts of which one is a resync (it sets sent_hash): the SQL store
    # failed (executemany of unlike rows), then inserted them grouped, out of order, so a
    # claim of one row took another one than the memory store's.
    m = machine()
    m.apply(0, [(0, True, 0, 0, False), (2, True, 0, 0, True), (1, True, 1, 0, False)], False)
    m.agree()
    m.claim(0, "create", 2)
    m.agree()
    m.teardown()
