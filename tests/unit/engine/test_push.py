"""The push room: batches, halving a refused batch, strikes, and answers recorded per row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

import httpx
import pytest

from dialsync.destinations.base import Capabilities, ItemResult, Outcome, WriteItem
from dialsync.destinations.http import ApiClient, OAuthToken
from dialsync.engine import DOWN_AFTER
from dialsync.errors import AmbiguousWriteError, RecordRejected, TransientError
from dialsync.retry import RetryPolicy
from dialsync.rowstate.decide import Status
from tests.unit.engine.fakes import Remote, contact_id, world


def test_creates_go_in_batches_of_the_destinations_max_batch() -> None:
    w = world()
    for n in range(250):
        w.source.put(n)
    report = w.engine.sync()
    assert w.dialer.sends("create") == [100, 100, 50]
    assert report.counts["created"] == 250 and report.unsettled == 0


def test_a_refused_batch_is_halved_until_the_poison_record_is_alone() -> None:
    w = world(capabilities=Capabilities(max_batch=8, native_upsert=False, full_replacement=False))
    for n in range(8):
        w.source.put(n)
    poison = contact_id(5)
    w.dialer.poison = {poison}
    w.dialer.refuse_with = lambda n: RecordRejected("bad field", code="INVALID", status=400)
    report = w.engine.sync()
    assert report.counts["created"] == 7 and report.counts["rejected"] == 1
    assert set(w.dialer.records) == {contact_id(n) for n in range(8)} - {poison}
    row = w.store.row("dialer", poison)
    assert (row["status"], row["reason_code"]) == (Status.REJECTED, "INVALID")
    assert w.dialer.sends("create") == [8, 4, 4, 2, 1, 1, 2]  # 0-3 ok; 4-7: 4-5: 4, 5; 6-7


def test_a_dialer_failing_whole_batches_is_left_alone_for_the_rest_of_the_run() -> None:
    w = world()
    for n in range(500):
        w.source.put(n)
    w.dialer.failures = [TransientError("down", status=503) for _ in range(DOWN_AFTER)]
    report = w.engine.sync()
    assert w.dialer.sends("create") == [100] * DOWN_AFTER  # then marked down
    assert report.counts["retrying"] == 100 * DOWN_AFTER
    assert report.unsettled == 500 and not w.dialer.records
    failed = w.store.row("dialer", contact_id(0))
    assert failed["status"] == Status.RETRYING and failed["reason_code"] == "HTTP_503"
    # its backoff: the first attempt's step (10 s base), the rng at its top
    assert failed["next_attempt_at"] == w.clock() + timedelta(seconds=10)
    w.clock.advance(3600)
    again = w.engine.sync()
    assert again.unsettled == 0 and len(w.dialer.records) == 500


@pytest.mark.parametrize("landed", [False, True])
def test_a_create_whose_answer_was_lost_waits_for_a_scan(landed: bool) -> None:
    w = world(unique_by_external_id=False, count_known=False)
    cid = w.source.put(1)
    w.dialer.failures = [AmbiguousWriteError("timed out after sending")]
    first = w.engine.sync()
    row = w.store.row("dialer", cid)
    assert row["inflight"] == "create" and row["record_id"] is None
    assert first.unsettled == 1 and w.dialer.sends("create") == [1]
    if landed:  # the dialer did create it after all
        w.dialer.records[cid] = Remote("r-landed", None)
    w.clock.advance(60)
    report = w.engine.sync()  # the scan settles it first: adopted, or never made
    assert len(w.dialer.records) == 1  # never twice
    if landed:
        assert w.dialer.sends("create") == [1]
        assert w.store.row("dialer", cid)["record_id"] == "r-landed"
    else:
        assert report.counts["created"] == 1 and w.dialer.sends("create") == [1, 1]
    assert report.unsettled == 0


@pytest.mark.parametrize("upsert", [False, True])
def test_an_unanswered_create_item_is_sent_again_without_a_scan_where_that_is_safe(
    upsert: bool,
) -> None:
    """The dialer's answer leaves one create item out. Where a second send cannot make a
    second record (an upsert by external id, or a list unique by external id) the row is
    simply retried; elsewhere it waits for a list scan."""
    caps = Capabilities(max_batch=100, native_upsert=upsert, full_replacement=False)
    w = world(capabilities=caps, unique_by_external_id=False, count_known=False)
    w.source.put(1)
    real = w.dialer.create

    def create(items: list[WriteItem]) -> list[ItemResult]:
        real(items)  # it landed, but the answer does not say so
        return []

    w.dialer.create = create  # type: ignore[method-assign]
    w.engine.sync()
    w.dialer.create = real  # type: ignore[method-assign]
    w.clock.advance(3600)
    report = w.engine.sync()
    assert report.unsettled == 0 and len(w.dialer.records) == 1
    scans = w.dialer.scans - 1  # a list never seen is scanned once, before anything is sent
    assert (scans == 0) if upsert else (scans >= 1)


def test_a_create_is_marked_in_flight_before_the_call() -> None:
    w = world()
    w.source.put(1)
    seen: list[object] = []
    real = w.dialer.create

    def create(items: list[WriteItem]) -> list[ItemResult]:
        seen.append(w.store.row("dialer", items[0].external_id)["inflight"])
        return real(items)

    w.dialer.create = create  # type: ignore[method-assign]
    w.engine.sync()
    assert seen == ["create"]
    assert w.store.row("dialer", contact_id(1))["inflight"] is None  # the answer cleared it


def test_answers_are_recorded_per_row() -> None:
    w = world(unique_by_external_id=False)  # where sending a create twice may duplicate it
    for n in range(4):
        w.source.put(n)
    answers = {
        contact_id(0): Outcome.OK,
        contact_id(1): Outcome.REJECTED,
        contact_id(2): Outcome.TRANSIENT,
        # contact 3: not answered at all
    }

    def create(items: list[WriteItem]) -> list[ItemResult]:
        return [
            ItemResult(i.external_id, answers[i.external_id], "r1", code="X")
            for i in items
            if i.external_id in answers
        ]

    w.dialer.create = create  # type: ignore[method-assign]
    report = w.engine.sync()
    assert (report.counts["created"], report.counts["rejected"], report.counts["retrying"]) == (
        1,
        1,
        2,
    )
    status = {n: w.store.row("dialer", contact_id(n))["status"] for n in range(4)}
    assert status == {
        0: Status.SYNCED,
        1: Status.REJECTED,
        2: Status.RETRYING,
        3: Status.RETRYING,
    }
    assert w.store.row("dialer", contact_id(3))["inflight"] == "create"  # uncertain


def test_a_refused_request_reaches_the_engine_as_a_rejected_record() -> None:
    """The adapter's edge: a 400 through httpx becomes ``errors.RecordRejected``, and the push
    halves the batch it refused until the record is alone, then records it rejected."""
    poison = contact_id(2)

    def answer(request: httpx.Request) -> httpx.Response:
        if poison in {r["external_id"] for r in json.loads(request.content)}:
            return httpx.Response(400, json={"code": "BAD_FIELD", "message": "phone is invalid"})
        return httpx.Response(201, json=[])

    client = ApiClient(
        system="dialer",
        base_url="https://dialer.test",
        client=httpx.Client(transport=httpx.MockTransport(answer)),
        token=OAuthToken(lambda: ("token", 3600.0)),
        policy=RetryPolicy(max_attempts=1, base_seconds=0.0, max_backoff_seconds=0.0),
        sleep=lambda _: None,
    )
    with pytest.raises(RecordRejected) as refused:
        client.call("POST", "/records", json=[{"external_id": poison}], idempotent=False)
    assert refused.value.status == 400 and refused.value.code == "BAD_FIELD"

    def post(op: str, items: Sequence[WriteItem]) -> httpx.Response:
        body = [{"external_id": i.external_id, **(i.payload or {})} for i in items]
        return client.call("POST", f"/records/{op}", json=body, idempotent=False)

    w = world(capabilities=Capabilities(max_batch=4, native_upsert=False, full_replacement=False))
    w.dialer.before_write = post
    for n in range(4):
        w.source.put(n)
    report = w.engine.sync()
    assert (report.counts["created"], report.counts["rejected"]) == (3, 1)
    assert w.dialer.sends("create") == [4, 2, 2, 1, 1]  # 0-1 go; 2-3 refused: 2 alone, then 3
    assert set(w.dialer.records) == {contact_id(n) for n in (0, 1, 3)}
    row = w.store.row("dialer", poison)
    assert (row["status"], row["reason_code"]) == (Status.REJECTED, "BAD_FIELD")
    assert "phone is invalid" in row["reason_message"]
    assert (row["record_id"], row["inflight"], row["claimed_by"]) == (None, None, None)
    # at rest: the next run sends nothing until the contact changes
    assert w.engine.sync().counts["rejected"] == 0 and w.dialer.sends("create") == [4, 2, 2, 1, 1]
