"""The Destination contract, one suite for every adapter, each against its sandbox over HTTP.

What the engine relies on: one ItemResult per item, a record id that later updates, deletes and
scans agree on, per-record refusals that leave the rest of the batch written, repeats that never
duplicate, deletes that are idempotent, a full batch in one call, tokens renewed after expiry,
a 429's Retry-After waited out, and a scan that yields our records and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dialsync.destinations.base import Destination, ItemResult, Outcome, WriteItem
from dialsync.errors import TransientError
from tests.contract.kits import DESTINATIONS, KITS, Kit, duplicates, record


@pytest.fixture(params=DESTINATIONS)
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    with KITS[request.param]() as found:
        yield found
        found.check_spec()  # every request and answer of the test, against the vendor's spec


@pytest.fixture
def dest(kit: Kit) -> Iterator[Destination]:
    adapter = kit.build(sleep=kit.sleeps.append)
    adapter.open()
    try:
        yield adapter
    finally:
        adapter.close()


def items(dest: Destination, *numbers: int, last_name: str | None = None) -> list[WriteItem]:
    out = []
    for n in numbers:
        rec = record(n, last_name=last_name)
        out.append(WriteItem(rec.external_id, None, dest.render(rec)))
    return out


def created(dest: Destination, *numbers: int) -> dict[str, ItemResult]:
    results = dest.create(items(dest, *numbers))
    assert [r.outcome for r in results] == [Outcome.OK] * len(numbers), results
    return {r.external_id: r for r in results}


def test_shape_and_render(kit: Kit, dest: Destination) -> None:
    assert isinstance(dest, Destination)
    assert dest.name == kit.name and dest.target
    assert 1 <= dest.capabilities.max_batch <= 100  # all three document or advise 100
    rec = record(1)
    payload = dest.render(rec)
    # The engine hashes the payload to skip unchanged contacts: it must be stable and JSON.
    assert json.dumps(payload, sort_keys=True) == json.dumps(dest.render(rec), sort_keys=True)
    assert dest.render(record(1, last_name="Other")) != payload
    assert "Id" not in payload and "id" not in payload  # the destination owns its ids


def test_open_reports_the_target(kit: Kit, dest: Destination) -> None:
    created(dest, 1, 2)
    kit.add_foreign()
    info = dest.open()
    assert info.unique_by_external_id
    assert info.records_count == 3  # everything in the target, ours or not


def test_create_update_delete_round_trip(kit: Kit, dest: Destination) -> None:
    first = created(dest, 1, 2)
    ext1, ext2 = list(first)
    assert all(r.record_id for r in first.values())
    assert set(kit.held()) == {ext1, ext2}

    changed = [
        WriteItem(i.external_id, first[i.external_id].record_id, i.payload)
        for i in items(dest, 1, 2, last_name="Changed")
    ]
    results = dest.update(changed)
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    assert {kit.last_name(kit.one(e)) for e in (ext1, ext2)} == {"Changed"}
    # later calls address the record by the id the first answer gave
    assert [r.record_id for r in results] == [first[ext1].record_id, first[ext2].record_id]

    gone = dest.delete([WriteItem(ext1, first[ext1].record_id)])
    assert [r.outcome for r in gone] == [Outcome.OK]
    assert set(kit.held()) == {ext2}


def test_one_refused_record_does_not_sink_its_batch(kit: Kit, dest: Destination) -> None:
    good1, bad, good2 = items(dest, 1, 2, 3)
    spoiled = WriteItem(bad.external_id, None, kit.spoil(bad.payload or {}))
    results = {r.external_id: r for r in dest.create([good1, spoiled, good2])}
    assert len(results) == 3
    assert results[good1.external_id].outcome is Outcome.OK
    assert results[good2.external_id].outcome is Outcome.OK
    refused = results[bad.external_id]
    assert refused.outcome is Outcome.REJECTED and refused.code
    assert set(kit.held()) == {good1.external_id, good2.external_id}


def test_records_removed_by_hand(kit: Kit, dest: Destination) -> None:
    first = created(dest, 1, 2)
    ext1, ext2 = list(first)
    kit.remove_by_hand(ext1)
    kit.remove_by_hand(ext2)
    [changed] = items(dest, 1, last_name="Changed")
    [result] = dest.update([WriteItem(ext1, first[ext1].record_id, changed.payload)])
    if dest.capabilities.native_upsert:  # the upsert puts it back
        assert result.outcome is Outcome.OK
        assert kit.last_name(kit.one(ext1)) == "Changed"
    else:  # the id map is stale: the engine forgets the id and creates the record again
        assert result.outcome is Outcome.NOT_FOUND
        assert ext1 not in kit.held()
    # deleting what is already gone is what we wanted
    [deleted] = dest.delete([WriteItem(ext2, first[ext2].record_id)])
    assert deleted.outcome is Outcome.OK


def test_a_repeated_write_never_duplicates(kit: Kit, dest: Destination) -> None:
    first = created(dest, 1)
    [again] = dest.create(items(dest, 1))  # a create whose answer was lost, sent again
    assert again.outcome in (Outcome.OK, Outcome.DUPLICATE)
    if again.outcome is Outcome.OK:
        assert again.record_id == next(iter(first.values())).record_id
    assert not duplicates(kit)
    assert len(kit.held()) == 1


def test_a_full_batch_is_one_call(kit: Kit, dest: Destination) -> None:
    before = kit.stats()["writes"]
    created(dest, *range(1, dest.capabilities.max_batch + 1))
    assert kit.stats()["writes"] - before == 1
    assert len(kit.held()) == dest.capabilities.max_batch


def test_an_expired_token_is_renewed(kit: Kit, dest: Destination) -> None:
    created(dest, 1)
    tokens = kit.stats()["token_requests"]
    kit.expire_tokens()
    created(dest, 2)
    assert kit.stats()["token_requests"] == tokens + 1
    assert len(kit.held()) == 2


def test_429_retry_after_is_waited_out(kit: Kit, dest: Destination) -> None:
    kit.fail_next(1, 429, 0.25)
    created(dest, 1)
    assert 0.25 in kit.sleeps  # the server's wait, not our own backoff
    assert kit.stats()["status_counts"].get(429) == 1
    assert len(kit.held()) == 1


def test_faults_never_duplicate(kit: Kit, dest: Destination) -> None:
    """500s and answers lost after the write was applied: sending again until every item is
    answered (as the engine does) leaves each contact in the target once."""
    pending = {i.external_id: i for i in items(dest, *range(1, 21))}
    kit.fail_next(1, 500, None)  # refused before anything is applied
    kit.set_faults(drop_after_apply_rate=1.0)  # then applied, and never answered
    with pytest.raises(TransientError):
        dest.create(list(pending.values()))
    kit.set_faults(error_500_rate=0.3, drop_after_apply_rate=0.3)
    for _ in range(30):
        if not pending:
            break
        try:
            results = dest.create(list(pending.values()))
        except TransientError:
            continue  # nothing known about this call: all of it goes again
        for result in results:
            if result.outcome in (Outcome.OK, Outcome.DUPLICATE):
                pending.pop(result.external_id)
    kit.set_faults(error_500_rate=0.0, drop_after_apply_rate=0.0)
    assert not pending
    assert not duplicates(kit) and len(kit.held()) == 20
    stats = kit.stats()
    assert stats["dropped"] and stats["status_counts"].get(500)  # the faults did happen


def test_scan_yields_ours_and_only_ours(kit: Kit, dest: Destination) -> None:
    first = created(dest, 1, 2, 3)
    kit.add_foreign()
    assert sorted(dest.scan()) == sorted((e, str(r.record_id)) for e, r in first.items())


def test_delete_records_by_their_ids(kit: Kit, dest: Destination) -> None:
    first = created(dest, 1, 2)
    ext1, ext2 = list(first)
    results = dest.delete_records([str(first[ext1].record_id)])
    assert [(r.outcome, r.record_id) for r in results] == [(Outcome.OK, first[ext1].record_id)]
    assert set(kit.held()) == {ext2}
