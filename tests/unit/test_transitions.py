"""The row state machine: answers are compare-and-set against what was sent."""

from __future__ import annotations

from datetime import UTC, datetime

from dialsync.rowstate import transitions as t
from dialsync.rowstate.decide import Status

SENT = t.Sent(id=7, desired="present", payload_hash="h1", attempts=2)
LATER = datetime(2026, 1, 1, tzinfo=UTC)


def test_an_ok_answer_marks_synced_only_while_the_row_holds_what_was_sent() -> None:
    change = t.created(SENT, "rec-1", None)
    assert change.expect == SENT
    assert change.values["status"] == Status.SYNCED and change.values["sent_hash"] == "h1"
    # the row moved on: the dialer's facts are kept and the row stays due
    assert change.otherwise is not None
    assert change.otherwise["record_id"] == "rec-1" and change.otherwise["sent_hash"] == "h1"
    assert change.otherwise["status"] == Status.PENDING


def test_a_removal_answer_leaves_a_row_that_wants_presence_due() -> None:
    removal = t.Sent(id=1, desired="absent", payload_hash=None, attempts=0)
    change = t.removed(removal)
    assert change.values["status"] == Status.REMOVED
    assert change.otherwise is not None and change.otherwise["status"] == Status.PENDING
    assert change.otherwise["record_id"] is None


def test_failures_back_off_and_keep_an_uncertain_create_marked() -> None:
    change = t.failed(SENT, code="HTTP_500", message="x", next_attempt_at=LATER,
                      uncertain_create=True)  # fmt: skip
    assert change.values["status"] == Status.RETRYING and change.values["attempts"] == 3
    assert change.values["inflight"] == "create"
    assert change.otherwise == {"inflight": "create"}


def test_a_rejection_or_noop_never_overwrites_a_newer_state() -> None:
    assert t.rejected(SENT, code=None, message="m").otherwise == {"inflight": None}
    noop = t.noop_settled(t.Sent(id=1, desired="absent", payload_hash=None, attempts=0))
    assert noop.expect is not None and noop.otherwise is None
