"""The history keeps the names of the fields that changed, never their values."""

from __future__ import annotations

import json

from dialsync.rowstate.evidence import field_names


def test_names_of_changed_fields_only() -> None:
    old = json.dumps({"first_name": "Ann", "phone": "+14155550100", "priority": 5})
    new = json.dumps({"first_name": "Anne", "phone": "+14155550100", "title": "x"})
    assert field_names(old, new) == ["first_name", "priority", "title"]
    assert field_names(None, new) == ["first_name", "phone", "title"]  # a new record: all
    assert field_names(old, None) == []  # must not be called: no record to compare


def test_a_payload_that_is_not_an_object_is_named_as_a_whole() -> None:
    body = json.dumps([{"external_id": "a"}])
    assert field_names(None, body) == ["*"]
    assert field_names(body, body) == []
    assert field_names(body, json.dumps([{"external_id": "b"}])) == ["*"]
