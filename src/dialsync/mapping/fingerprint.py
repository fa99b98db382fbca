"""A fingerprint of everything that shapes a target's payloads. Pure: no I/O.

A record's payload is a function of its contact *and* of the mapping: the mapping file, the
mapping settings (priority, default region), the Salesforce fields the org has, the scope
(SOQL_WHERE), the lists contacts are routed to, and the destination's own rendering (its
field settings, e.g. Everbridge's paths or Conga's skipped fields). The sync table remembers
what it sent per record, but a change of any of those inputs changes no contact, so without a
fingerprint it would never reach the dialer.

The destination's rendering is captured by rendering a probe record that fills every field
(one phone of each type, an extension, every extra_data key): any setting that changes how a
field is rendered changes that output, and so does a new dialsync version that renders
differently. The default mapping is captured the same way, with a probe contact; a mapping
file by its validated content (not its text: comments and layout change nothing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dialsync.models import DialerRecord, Phone, PhoneType, Skip, SourceContact

from .contact import MappingConfig

# What each input is called when a change is reported; the keys are stored in the database.
LABELS: dict[str, str] = {
    "mapping": "DIALSYNC_MAPPING__FILE",
    "mapper": "the mapping's output for a probe contact (a new dialsync version?)",
    "priority": "DIALSYNC_MAPPING__PRIORITY",
    "default_region": "DIALSYNC_MAPPING__DEFAULT_REGION",
    "instance_url": "the Salesforce instance URL (record links)",
    "fields": "the Contact fields the org has",
    "scope": "DIALSYNC_SALESFORCE__SOQL_WHERE",
    "lists": "the record lists contacts are routed to",
    "render": "the destination's field settings (its rendering of a record)",
}

_PROBE_RECORD = DialerRecord(
    external_provider="salesforce",
    external_id="003000000000000AAA",
    external_url="https://probe.invalid/lightning/r/Contact/003000000000000AAA/view",
    first_name="Probe",
    last_name="Record",
    phones=tuple(
        Phone(number=f"+1415555010{i}", type=kind, region="US", extension="12" if i == 0 else None)
        for i, kind in enumerate(PhoneType)
    ),
    timezone="America/Los_Angeles",
    priority=5,
    extra_data={
        "email": "probe@example.com",
        "title": "Probe",
        "account_name": "Probe Inc",
        "mailing_city": "San Francisco",
        "mailing_state": "CA",
        "mailing_postal_code": "94105",
        "mailing_country": "United States",
        "mobile_extension": "12",
    },
    email="probe@example.com",
    mailing_country_code="US",
)

_PROBE_CONTACT = SourceContact(
    id="003000000000000AAA",
    system_modstamp=datetime(2000, 1, 1, tzinfo=UTC),
    fields={
        "FirstName": "Probe",
        "LastName": "Contact",
        "MobilePhone": "(415) 555-0100",
        "Phone": "+44 20 7946 0958",
        "HomePhone": "020 7946 0959",
        "OtherPhone": "+1 212 555 0101 ext. 7",
        "AssistantPhone": "555-0102",
        "DoNotCall": False,
        "Email": "probe@example.com",
        "Title": "Probe",
        "Account.Name": "Probe Inc",
        "MailingCity": "San Francisco",
        "MailingState": "California",
        "MailingPostalCode": "94105",
        "MailingCountry": "United States",
    },
)


_PROBE_CONFIG = MappingConfig(instance_url="https://probe.invalid", default_region="US", priority=5)


def digest_of(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def target_inputs(
    *,
    config: MappingConfig,
    fields: Sequence[str],
    mapper: Callable[[SourceContact, MappingConfig], DialerRecord | Skip],
    render: Callable[[DialerRecord], dict[str, Any]],
    payload_settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The inputs of one target's fingerprint: small values as they are, the rest digested.

    ``payload_settings`` are what the composition root knows beyond the mapping config: the
    mapping file's content, SOQL_WHERE, the routed lists (see ``EngineOptions``).
    """
    # A fixed config: this input stands for the mapping's code and rules; the settings are
    # inputs of their own.
    probe = mapper(_PROBE_CONTACT, _PROBE_CONFIG)
    inputs: dict[str, Any] = {
        "mapping": "default",
        "priority": config.priority,
        "default_region": config.default_region,
        "instance_url": config.instance_url,
        "fields": digest_of(sorted(fields)),
        "mapper": digest_of(probe.model_dump(mode="json")),
        "render": digest_of(render(_PROBE_RECORD)),
    }
    for name, value in payload_settings.items():
        inputs[name] = value if isinstance(value, str | int | None) else digest_of(value)
    return inputs


def fingerprint(inputs: Mapping[str, Any]) -> str:
    return digest_of(dict(inputs))


def changed_inputs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Names of the inputs that differ (every one when nothing was recorded)."""
    if old is None:
        return []
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def describe(names: Sequence[str]) -> str:
    """The changed inputs in words, for a log line or the plan."""
    if not names:
        return "not recorded for this target yet (a new list, or the first sync since fingerprints)"
    # The probe's output moves with the mapping file too: it names a cause only on its own.
    named = [n for n in names if n != "mapper"] or list(names)
    return ", ".join(_label(name) for name in named)


def _label(name: str) -> str:
    section = name.removeprefix("mapping.")
    if section != name:
        return f"the mapping file's {section}"
    return LABELS.get(name, name)
