"""The Talkdesk record for a mapped contact, and a listed record in the same form (pure: no
I/O). The adapter (``talkdesk.py``) sends the first and compares the second with it."""

from __future__ import annotations

from typing import Any

from dialsync.models import DialerRecord


def render_record(record: DialerRecord) -> dict[str, Any]:
    """The Talkdesk record for a mapped contact; optional fields are omitted when unknown."""
    payload: dict[str, Any] = {
        "phone_numbers": [
            {"phone_number": p.number, "phone_type": p.type.value} for p in record.phones
        ],
        "first_name": record.first_name,
        "last_name": record.last_name,
        "external_provider": record.external_provider,
        "external_id": record.external_id,
        "external_url": record.external_url,
        "sync_external_id": record.sync_external_id,
        "extra_data": dict(record.extra_data),
    }
    if record.timezone:
        payload["timezone"] = record.timezone
    if record.priority is not None:
        payload["priority"] = record.priority
    return payload


# The fields render_record writes; an optional one left out of a payload is absent or null.
OWNED_FIELDS = (
    "phone_numbers",
    "first_name",
    "last_name",
    "external_provider",
    "external_id",
    "external_url",
    "sync_external_id",
    "extra_data",
    "timezone",
    "priority",
)
OPTIONAL_FIELDS = frozenset({"timezone", "priority"})


def as_payload(record: dict[str, Any]) -> dict[str, Any]:
    """A record of the list in the form render_record gives, to compare with what we sent."""
    out = {name: record.get(name) for name in OWNED_FIELDS}
    for name in OPTIONAL_FIELDS:
        if out[name] is None:
            del out[name]
    return out
