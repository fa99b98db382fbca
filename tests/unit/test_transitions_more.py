"""Direct cases of the transitions test_transitions.py does not reach: blocked, recreate,
vanished, and the pull side (pulled, reread). Pure: each builds a Change or a column dict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialsync.rowstate import transitions as t
from dialsync.rowstate.decide import Desired, RowState, Status, Verdict

SENT = t.Sent(id=7, desired="present", payload_hash="h1", attempts=2)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
STAMP = NOW - timedelta(hours=1)
LATER = NOW + timedelta(hours=6)


def _row(**columns: object) -> RowState:
    base: dict[str, object] = {
        "id": 7,
        "external_id": "003A",
        "record_id": "rec-1",
        "status": Status.SYNCED,
        "desired": "present",
        "payload_hash": "h1",
        "sent_hash": "h1",
        "source_modstamp": STAMP,
        "inflight": None,
    }
    return RowState(**{**base, **columns})  # type: ignore[arg-type]


def _want(**fields: object) -> Desired:
    base: dict[str, object] = {
        "external_id": "003A",
        "modstamp": STAMP,
        "present": True,
        "payload": '{"a": 1}',
        "payload_hash": "h1",
    }
    return Desired(**{**base, **fields})  # type: ignore[arg-type]


# -- push side -------------------------------------------------------------------------------
def test_a_blocked_row_rests_with_its_reason_and_a_slow_next_attempt() -> None:
    change = t.blocked(SENT, code="PHONE_IN_USE", message="held by rec-9", next_attempt_at=LATER)
    assert change.expect == SENT  # only while the row still wants what was sent
    assert change.values["status"] == Status.BLOCKED
    assert change.values["next_attempt_at"] == LATER
    assert change.values["attempts"] == 3 and change.values["inflight"] is None
    assert (change.values["reason_code"], change.values["reason_message"]) == (
        "PHONE_IN_USE",
        "held by rec-9",
    )
    assert change.otherwise == {"inflight": None}  # a newer state is kept as it is
    assert Status.BLOCKED in t.AT_REST


def test_a_refusal_without_a_code_or_message_still_says_something_bounded() -> None:
    change = t.blocked(SENT, code=None, message="", next_attempt_at=LATER)
    assert change.values["reason_code"] == "OTHER" and change.values["reason_message"] is None
    long = t.rejected(SENT, code="X", message="m" * 600)
    assert len(long.values["reason_message"]) == 500
    assert long.values["status"] == Status.REJECTED and long.values["next_attempt_at"] is None


def test_recreate_forgets_the_stale_record_and_is_due_unconditionally() -> None:
    change = t.recreate(SENT)
    assert change.expect is None and change.otherwise is None
    assert change.values == {
        "record_id": None,
        "sent_hash": None,
        "inflight": None,
        "attempts": 0,
        "status": Status.PENDING,
        "next_attempt_at": None,
    }


def test_a_vanished_record_is_created_again_whatever_the_row_wants_now() -> None:
    change = t.vanished(SENT)
    assert change.expect is None  # the dialer's fact holds even if the row moved on
    assert change.values["record_id"] is None and change.values["sent_hash"] is None
    assert change.values["status"] == Status.PENDING and change.values["next_attempt_at"] is None
    assert "attempts" not in change.values  # its failures so far still count


def test_released_and_not_sent_change_nothing_but_the_claim() -> None:
    assert t.released(3) == t.Change(3)
    assert t.not_sent(3) == t.Change(3, {"inflight": None})


# -- pull side -------------------------------------------------------------------------------
@pytest.mark.parametrize("verdict", [Verdict.UNCHANGED, Verdict.WAITING])
def test_a_lookback_reread_of_the_same_stamp_is_a_reread(verdict: Verdict) -> None:
    assert t.reread(verdict, _row(), _want())


@pytest.mark.parametrize(
    ("verdict", "row", "want"),
    [
        (Verdict.UPDATE, _row(), _want()),  # something to send
        (Verdict.UNCHANGED, _row(), _want(force=True)),  # a resync
        (Verdict.UNCHANGED, _row(), _want(modstamp=None)),  # from getDeleted: no stamp
        (Verdict.UNCHANGED, _row(), _want(modstamp=NOW)),  # edited since
    ],
)
def test_anything_else_is_not_a_reread(verdict: Verdict, row: RowState, want: Desired) -> None:
    assert not t.reread(verdict, row, want)


def test_pulled_waiting_only_stamps_the_row() -> None:
    values = t.pulled(Verdict.WAITING, _row(status=Status.RETRYING), _want(modstamp=NOW), 5, NOW)
    assert values == {"updated_at": NOW, "last_seen_run": 5, "source_modstamp": NOW}


def test_pulled_unchanged_reread_leaves_the_row_as_it_is() -> None:
    values = t.pulled(Verdict.UNCHANGED, _row(), _want(), 5, NOW)
    assert values == {"updated_at": NOW, "last_seen_run": 5, "source_modstamp": STAMP}


def test_pulled_unchanged_with_a_new_stamp_settles_the_row() -> None:
    row = _row(status=Status.RETRYING, sent_hash="h1")
    values = t.pulled(Verdict.UNCHANGED, row, _want(modstamp=NOW), None, NOW)
    assert values["status"] == Status.SYNCED and values["desired"] == "present"
    assert values["attempts"] == 0 and values["next_attempt_at"] is None
    assert values["reason_code"] is None and values["payload_hash"] == "h1"


def test_pulled_unchanged_absent_keeps_the_rows_status_and_says_why() -> None:
    row = _row(status=Status.REMOVED, record_id=None, desired="absent")
    want = _want(
        modstamp=NOW, present=False, payload=None, payload_hash=None, reason_code="DO_NOT_CALL"
    )
    values = t.pulled(Verdict.UNCHANGED, row, want, 5, NOW)
    assert values["status"] == Status.REMOVED and values["desired"] == "absent"
    assert values["reason_code"] == "DO_NOT_CALL"
    # no row yet: skipped
    assert t.pulled(Verdict.UNCHANGED, None, want, 5, NOW)["status"] == Status.SKIPPED


def test_pulled_remap_to_another_payload_is_written_even_on_the_same_stamp() -> None:
    values = t.pulled(Verdict.UNCHANGED, _row(), _want(remap=True, payload_hash="h2"), 5, NOW)
    assert values["payload_hash"] == "h2" and values["status"] == Status.SYNCED


@pytest.mark.parametrize("verdict", [Verdict.CREATE, Verdict.UPDATE, Verdict.DELETE])
def test_pulled_work_is_pending_with_a_fresh_count(verdict: Verdict) -> None:
    want = _want(modstamp=NOW, payload_hash="h2")
    values = t.pulled(verdict, _row(status=Status.RETRYING), want, 5, NOW)
    assert values["status"] == Status.PENDING
    assert values["payload_hash"] == "h2" and values["attempts"] == 0
    assert values["next_attempt_at"] is None
    assert "sent_hash" not in values  # what the dialer holds is unchanged by a pull


def test_pulled_with_force_forgets_what_the_dialer_holds() -> None:
    values = t.pulled(Verdict.UPDATE, _row(), _want(force=True), 5, NOW)
    assert values["sent_hash"] is None and values["status"] == Status.PENDING


def test_pulled_skip_is_skipped_or_stays_removed() -> None:
    want = _want(present=False, payload=None, payload_hash=None, reason_code="DELETED")
    assert t.pulled(Verdict.SKIP, None, want, 5, NOW)["status"] == Status.SKIPPED
    removed = _row(status=Status.REMOVED, record_id=None)
    values = t.pulled(Verdict.SKIP, removed, want, 5, NOW)
    assert values["status"] == Status.REMOVED and values["desired"] == "absent"
    assert values["reason_code"] == "DELETED"
