"""A mapping change: the fingerprint's inputs and the list's capacity (the decision for a
contact seen already is in test_decide.py)."""

from __future__ import annotations

from dataclasses import replace

from dialsync.destinations.capacity import ListCapacity, says_full
from dialsync.mapping import MappingConfig, map_contact
from dialsync.mapping.fingerprint import changed_inputs, describe, fingerprint, target_inputs
from dialsync.models import DialerRecord
from dialsync.settings import EverbridgeSettings

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
