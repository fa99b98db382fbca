"""The default mapping: one Salesforce Contact to a :class:`DialerRecord`, or why it is skipped.

``map_contact`` is total: Contact fields hold whatever users and integrations wrote, and one odd
row must never stop a sync, so every value is cleaned or dropped rather than trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

import phonenumbers

from dialsync.models import DialerRecord, Phone, Skip, SkipReason, SourceContact

from .countries import country_timezone, resolve_country
from .phones import PHONE_FIELDS, collect_phones, phone_timezone
from .text import clean_and_truncate, clean_text, truncate

# Read by map_contact from SourceContact.fields. Id, IsDeleted, MasterRecordId and
# SystemModstamp are not listed: the source always selects them and SOQL rejects a field
# selected twice.
CONTACT_FIELDS: tuple[str, ...] = (
    "FirstName",
    "LastName",
    *(field for field, _ in PHONE_FIELDS),
    "DoNotCall",
    "Email",
    "Title",
    "Account.Name",
    "MailingCity",
    "MailingState",
    "MailingStateCode",
    "MailingPostalCode",
    "MailingCountry",
    "MailingCountryCode",
)
# Exist only in orgs with state and country picklists; selecting them elsewhere is an error.
OPTIONAL_FIELDS: frozenset[str] = frozenset({"MailingCountryCode", "MailingStateCode"})

NAME_MAX_LENGTH = 80  # Talkdesk: first_name and last_name are 1..80 characters
# A blank name (or one made only of removed characters) becomes this, on its own: Salesforce
# requires LastName but not FirstName, and "Unknown Smith" tells the agent exactly what is
# known. Salutation is not used: "Mr." is no name to greet someone with.
NAME_FALLBACK = "Unknown"
EXTRA_MAX_LENGTH = 255
EMAIL_MAX_LENGTH = 254  # RFC 5321: a longer value is not an address

# Spellings of a true DoNotCall. Deliberately broad: calling someone who asked not to be called
# is the expensive mistake, so "1" or "yes" from a data load also counts.
_TRUE_TEXTS = frozenset({"true", "t", "1", "yes", "y"})

# extra_data key -> Salesforce fields, the first non-blank one wins.
_EXTRA_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("title", ("Title",)),
    ("account_name", ("Account.Name",)),
    ("mailing_city", ("MailingCity",)),
    ("mailing_state", ("MailingState", "MailingStateCode")),
    ("mailing_postal_code", ("MailingPostalCode",)),
    ("mailing_country", ("MailingCountry", "MailingCountryCode")),
)


@dataclass(frozen=True)
class MappingConfig:
    """Settings of the default mapping; invalid values fail here, at start-up, not per contact."""

    instance_url: str  # e.g. "https://acme.my.salesforce.com"; a trailing slash is removed
    default_region: str = "US"  # ISO-2 region when neither the number nor the contact says
    priority: int | None = 5  # 1..10, None = omit (Talkdesk treats omitted as "hot lead")
    provider: str = "salesforce"

    def __post_init__(self) -> None:
        # Frozen dataclass: normalized values are set through object.__setattr__.
        object.__setattr__(self, "instance_url", self.instance_url.rstrip("/"))
        object.__setattr__(self, "default_region", self.default_region.upper())
        if not self.instance_url:
            raise ValueError("instance_url is required")
        if self.default_region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"default_region {self.default_region!r} is not a known region")
        if self.priority is not None and (
            isinstance(self.priority, bool) or not 1 <= self.priority <= 10
        ):
            raise ValueError(f"priority must be 1..10 or None, not {self.priority!r}")
        if not self.provider:
            raise ValueError("provider is required")


def map_contact(contact: SourceContact, config: MappingConfig) -> DialerRecord | Skip:
    """The dialer record for ``contact``, or a :class:`Skip` saying why it must not be dialled.

    Never raises, whatever ``contact.fields`` holds.
    """
    fields = contact.fields
    if contact.is_deleted:
        if clean_text(contact.master_record_id) is not None:
            return Skip(reason=SkipReason.MERGED, message="The contact was merged into another.")
        return Skip(reason=SkipReason.DELETED, message="The contact was deleted in Salesforce.")
    if _is_true(fields.get("DoNotCall")):
        return Skip(reason=SkipReason.DO_NOT_CALL, message="The contact is marked Do Not Call.")

    country = contact_country(fields)
    # A resolved country phonenumbers has no plan for (Antarctica) cannot parse national numbers.
    region = country if country in phonenumbers.SUPPORTED_REGIONS else config.default_region
    phones = collect_phones(fields, region)
    if not phones:
        return Skip(reason=SkipReason.NO_VALID_PHONE, message="The contact has no valid phone.")

    timezone = next((zone for zone in map(phone_timezone, phones) if zone), None)
    email = clean_text(fields.get("Email"))
    if email is not None and len(email) > EMAIL_MAX_LENGTH:
        email = None
    return DialerRecord(
        external_provider=config.provider,
        external_id=contact.id,
        # Quoted: a valid Id is unchanged, anything else cannot reshape the URL.
        external_url=f"{config.instance_url}/lightning/r/Contact/{quote(contact.id, safe='')}/view",
        sync_external_id=True,
        first_name=_name(fields.get("FirstName")),
        last_name=_name(fields.get("LastName")),
        phones=phones,
        timezone=timezone or country_timezone(country),
        priority=config.priority,
        extra_data=_extra_data(fields, email, phones),
        email=email,
        mailing_country_code=country,
    )


def contact_country(fields: Mapping[str, object]) -> str | None:
    """The contact's ISO-2 mailing country: the picklist code when it resolves, else the text."""
    for field in ("MailingCountryCode", "MailingCountry"):
        code = resolve_country(clean_text(fields.get(field)))
        if code is not None:
            return code
    return None


def _is_true(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        # Compared only when finite: comparing a signaling NaN raises InvalidOperation.
        return value.is_finite() and value == 1
    if isinstance(value, int | float):
        return value == 1
    text = clean_text(value) if isinstance(value, str) else None
    return text is not None and text.casefold() in _TRUE_TEXTS


def _name(value: object) -> str:
    return clean_and_truncate(value, NAME_MAX_LENGTH) or NAME_FALLBACK


def _extra_data(
    fields: Mapping[str, object], email: str | None, phones: tuple[Phone, ...]
) -> dict[str, str]:
    extra: dict[str, str] = {}
    if email is not None:
        extra["email"] = email
    for key, names in _EXTRA_FIELDS:
        text = next(
            (t for t in (clean_and_truncate(fields.get(n), EXTRA_MAX_LENGTH) for n in names) if t),
            None,
        )
        if text is not None:
            extra[key] = text
    for phone in phones:
        if phone.extension:
            extra[f"{phone.type.value.lower()}_extension"] = truncate(
                phone.extension, EXTRA_MAX_LENGTH
            )
    return extra
