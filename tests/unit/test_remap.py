"""A mapping change: the fingerprint's inputs, and the decision for a contact seen already."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from dialsync.destinations.capacity import ListCapacity, says_full
from dialsync.mapping import MappingConfig, map_contact
from dialsync.mapping.fingerprint import changed_inputs, describe, fingerprint, target_inputs
from dialsync.models import DialerRecord
from dialsync.settings import EverbridgeSettings
from dialsync.store.decide import Desired, RowState, Verdict, decide

T1 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
CONFIG = MappingConfig(instance_url="https://acme.my.salesforce.com")


def talkdesk_render(record: DialerRecord) -> dict[str, object]:
    from dialsync.destinations.talkdesk import render_record

    return render_record(record)


def inputs(config: MappingConfig = CONFIG, **settings: object) -> dict[str, object]:
    return target_inputs(
        config=config,
        fields=["FirstName", "LastName"],
        mapper=map_contact,
        render=settings.pop("render", talkdesk_render),  # type: ignore[arg-type]
        payload_settings={"scope": None, **settings},
    )


def test_each_input_that_shapes_a_payload_changes_the_fingerprint_and_is_named() -> None:
    base = inputs()
    assert fingerprint(base) == fingerprint(inputs())  # stable across calls
    variants = {
        "priority": inputs(replace(CONFIG, priority=8)),
        "default_region": inputs(replace(CONFIG, default_region="GB")),
        "instance_url": inputs(replace(CONFIG, instance_url="https://other.my.salesforce.com")),
        "scope": inputs(scope="Region__c = 'EU'"),
        "mapping.priority": inputs(**{"mapping.priority": {"field": "LeadSource"}}),
    }
    for name, changed in variants.items():
        assert fingerprint(changed) != fingerprint(base), name
        assert name in changed_inputs(base, changed), name
    assert "DIALSYNC_MAPPING__PRIORITY" in describe(["priority"])
    assert describe(["mapping.routing"]) == "the mapping file's routing"


def test_a_destination_setting_is_seen_through_its_rendering() -> None:
    from dialsync.destinations.everbridge import render_contact

    def everbridge(settings: EverbridgeSettings) -> dict[str, object]:
        return inputs(render=lambda record: render_contact(record, settings))

    e164 = everbridge(EverbridgeSettings())
    national = everbridge(EverbridgeSettings(phone_format="national"))
    attributes = everbridge(EverbridgeSettings(attributes={"title": "Job Title"}))
    assert changed_inputs(e164, national) == ["render"]
    assert changed_inputs(e164, attributes) == ["render"]
    assert changed_inputs(e164, everbridge(EverbridgeSettings(timeout_seconds=5))) == []


def _row(**kw: object) -> RowState:
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


def test_a_remap_renders_again_a_contact_seen_already_and_sends_only_a_change() -> None:
    # The lookback shortcut holds only for the same content (two edits in one second share
    # a stamp and are told apart by content), so a re-read of the same payload costs nothing.
    assert decide(_row(), Desired("x", T1, True, "{}", "h1")) is Verdict.UNCHANGED
    seen_again = Desired("x", T1, True, "{}", "h2")
    assert decide(_row(), replace(seen_again, remap=True)) is Verdict.UPDATE
    same = Desired("x", T1, True, "{}", "h1", remap=True)
    assert decide(_row(), same) is Verdict.UNCHANGED
    gone = Desired("x", T1, False, reason_code="routed_elsewhere", remap=True)
    assert decide(_row(), gone) is Verdict.DELETE
    skipped = _row(record_id=None, status="skipped", desired="absent", payload_hash=None)
    assert decide(skipped, replace(same, payload_hash="h3")) is Verdict.CREATE


def test_a_remap_leaves_a_rejected_record_alone_unless_its_payload_changed() -> None:
    rejected = _row(record_id=None, status="rejected", sent_hash=None)
    assert decide(rejected, Desired("x", T1, True, "{}", "h1", remap=True)) is Verdict.UNCHANGED
    assert decide(rejected, Desired("x", T1, True, "{}", "h2", remap=True)) is Verdict.CREATE


def test_list_capacity_grants_what_fits_and_frees_room_on_removal() -> None:
    capacity = ListCapacity(10)
    assert capacity.reserve(5) == 5  # count unknown: nothing held back
    assert capacity.opened(8) is not None
    assert capacity.reserve(5) == 2
    capacity.release(1)  # one of the two was rejected
    fill = capacity.fill()
    assert fill is not None and (fill.held, fill.level) == (9, "warn")
    assert capacity.reserve(3) == 1 and capacity.reserve(1) == 0
    capacity.removed(4)
    assert capacity.reserve(10) == 4
    capacity.refused()
    assert capacity.reserve(1) == 0 and str(capacity.fill()) == "10 of at most 10 records (100%)"


def test_only_a_refusal_about_the_list_being_full_holds_creates() -> None:
    assert says_full("RECORD_LIST_LIMIT_REACHED", "")
    assert says_full("BAD_REQUEST", "the record list is full")
    assert not says_full("INVALID_RECORD", "first_name exceeds the maximum length")
    assert not says_full("PHONE_NUMBER_INVALID", None)
