"""The whole Everbridge contact for a mapped record (pure: no I/O).

Everbridge's batch write is a full replacement, so every write carries every field we own;
see README "Everbridge: full replacement, and which fields are ours".
"""

from __future__ import annotations

from typing import Any

import phonenumbers

from dialsync.models import DialerRecord, Phone
from dialsync.settings import EverbridgeSettings

# Per path, the batch schema requires these beside pathId, value and countryCode.
PATH_DEFAULTS: dict[str, Any] = {"waitTime": 0, "skipValidation": False, "pathEnable": True}


def path_ref(path: str) -> dict[str, Any]:
    """A configured path: digits name a pathId, anything else a prompt."""
    return {"pathId": int(path)} if path.isdigit() else {"prompt": path}


def record_type(settings: EverbridgeSettings) -> dict[str, Any]:
    """The record type every contact gets: the id when set, else the name."""
    if settings.record_type_id is not None:
        return {"recordTypeId": settings.record_type_id}
    return {"recordTypeName": settings.record_type_name}


def render_contact(record: DialerRecord, settings: EverbridgeSettings) -> dict[str, Any]:
    """The whole Everbridge contact for a mapped record: every field we own, every time."""
    contact: dict[str, Any] = {
        "externalId": record.external_id,
        "firstName": record.first_name,
        "lastName": record.last_name,
        **record_type(settings),
    }
    paths: list[dict[str, Any]] = []
    used: set[str] = set()
    for phone in record.phones:  # already in preference order
        path = settings.paths.get(phone.type.value)
        country = phone.region or record.mailing_country_code
        # One value per path (the first, preferred, phone wins); a number of no country (a
        # non-geographic +800) cannot carry the ISO code Everbridge requires.
        if not path or path in used or not country:
            continue
        used.add(path)
        value = _national(phone) if settings.phone_format == "national" else phone.number
        paths.append({**path_ref(path), "countryCode": country, "value": value})
    # The batch schema wants a countryCode on every path, the e-mail's too (its examples give
    # the contact's country); without any country there is no phone path either.
    country = record.mailing_country_code or next((p["countryCode"] for p in paths), None)
    if settings.email_path and record.email and country:
        paths.append(
            {**path_ref(settings.email_path), "countryCode": country, "value": record.email}
        )
    contact["paths"] = paths
    contact["contactAttributes"] = [
        {"name": name, "values": [record.extra_data[key]]}
        for key, name in sorted(settings.attributes.items())
        if record.extra_data.get(key)
    ]
    return contact


def _national(phone: Phone) -> str:
    return str(phonenumbers.parse(phone.number).national_number)
