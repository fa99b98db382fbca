"""The one decision rule of the sync table, case by case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dialsync.rowstate.decide import Desired, RowState, Verdict, decide

T1 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 1, 1, 10, 0, 1, tzinfo=UTC)


def row(**kw: object) -> RowState:
    base: dict[str, object] = dict(
        id=1,
        external_id="x",
        record_id="r1",
        status="synced",
        desired="present",
        payload_hash="h1",
        sent_hash="h1",
        source_modstamp=T1,
        inflight=None,
    )
    base.update(kw)
    return RowState(**base)  # type: ignore[arg-type]


def present(h: str = "h1", at: datetime = T2, force: bool = False) -> Desired:
    return Desired("x", at, True, "{}", h, force=force)


def absent(at: datetime | None = T2) -> Desired:
    return Desired("x", at, False, reason_code="do_not_call")


def test_new_contact_is_created_or_skipped() -> None:
    assert decide(None, present()) is Verdict.CREATE
    assert decide(None, absent()) is Verdict.SKIP


def test_lookback_reread_changes_nothing() -> None:
    assert decide(row(), present("h1", at=T1)) is Verdict.UNCHANGED
    assert decide(row(status="pending", sent_hash=None), present("h1", at=T1)) is Verdict.WAITING


def test_a_second_edit_with_the_same_modstamp_is_decided_by_content() -> None:
    # SystemModstamp has one-second precision: two edits in one second share it
    assert decide(row(), present("h2", at=T1)) is Verdict.UPDATE
    assert decide(row(), absent(at=T1)) is Verdict.DELETE
    gone = row(record_id=None, status="removed", desired="absent", payload_hash=None)
    assert decide(gone, present("h1", at=T1)) is Verdict.CREATE


def test_unchanged_payload_costs_no_call_even_with_a_new_modstamp() -> None:
    assert decide(row(), present("h1")) is Verdict.UNCHANGED


def test_changed_payload_is_an_update() -> None:
    assert decide(row(), present("h2")) is Verdict.UPDATE


def test_force_resends_an_unchanged_payload() -> None:
    assert decide(row(), present("h1", force=True)) is Verdict.UPDATE
    assert decide(row(), present("h1", at=T1, force=True)) is Verdict.UPDATE


def test_absent_contact_is_deleted_only_when_the_dialer_may_hold_it() -> None:
    assert decide(row(), absent()) is Verdict.DELETE
    assert decide(row(record_id=None, status="skipped", desired="absent"), absent()) is Verdict.SKIP
    # a create whose answer was lost may have happened: it must be looked for and removed
    assert (
        decide(row(record_id=None, inflight="create", status="retrying"), absent())
        is Verdict.DELETE
    )


def test_rejected_is_retried_only_when_the_contact_changes() -> None:
    rejected = row(record_id=None, status="rejected", sent_hash=None)
    assert decide(rejected, present("h1", at=T1)) is Verdict.UNCHANGED
    assert decide(rejected, present("h1", at=T2)) is Verdict.CREATE


def test_queued_row_with_same_payload_keeps_its_backoff() -> None:
    queued = row(record_id=None, status="retrying", sent_hash=None)
    assert decide(queued, present("h1")) is Verdict.WAITING
    assert decide(queued, present("h2")) is Verdict.CREATE


def test_removed_contact_that_returns_is_created_again() -> None:
    removed = row(
        record_id=None, status="removed", desired="absent", payload_hash=None, sent_hash=None
    )
    assert decide(removed, present()) is Verdict.CREATE


def test_adopted_unverified_record_is_updated_to_our_payload() -> None:
    adopted = row(
        status="unverified",
        desired="absent",
        payload_hash=None,
        sent_hash=None,
        source_modstamp=None,
    )
    assert decide(adopted, present()) is Verdict.UPDATE
    assert decide(adopted, absent()) is Verdict.DELETE


@pytest.mark.parametrize("at", [None])
def test_delete_known_only_from_get_deleted(at: datetime | None) -> None:
    assert decide(row(), absent(at)) is Verdict.DELETE


def test_a_remap_renders_again_a_contact_seen_already_and_sends_only_a_change() -> None:
    # The lookback shortcut holds only for the same content (two edits in one second share
    # a stamp and are told apart by content), so a re-read of the same payload costs nothing.
    assert decide(row(), Desired("x", T1, True, "{}", "h1")) is Verdict.UNCHANGED
    seen_again = Desired("x", T1, True, "{}", "h2")
    assert decide(row(), replace(seen_again, remap=True)) is Verdict.UPDATE
    same = Desired("x", T1, True, "{}", "h1", remap=True)
    assert decide(row(), same) is Verdict.UNCHANGED
    gone = Desired("x", T1, False, reason_code="routed_elsewhere", remap=True)
    assert decide(row(), gone) is Verdict.DELETE
    skipped = row(record_id=None, status="skipped", desired="absent", payload_hash=None)
    assert decide(skipped, replace(same, payload_hash="h3")) is Verdict.CREATE


def test_a_remap_leaves_a_rejected_record_alone_unless_its_payload_changed() -> None:
    rejected = row(record_id=None, status="rejected", sent_hash=None)
    assert decide(rejected, Desired("x", T1, True, "{}", "h1", remap=True)) is Verdict.UNCHANGED
    assert decide(rejected, Desired("x", T1, True, "{}", "h2", remap=True)) is Verdict.CREATE
