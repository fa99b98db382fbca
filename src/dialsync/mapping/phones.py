"""Phone numbers: Salesforce's free-text phone fields to validated E.164 numbers.

Users type phones in any shape: "(415) 555-1212", "415.555.1212 x23", "+44 20 7946 0958",
"020 7946 0958" in a UK contact, "415-555-1212 (cell)", "N/A". Only numbers that phonenumbers
considers valid are kept: a dialer calling a mangled number reaches a stranger.
"""

from __future__ import annotations

from collections.abc import Mapping

import phonenumbers
import pytz
from phonenumbers import Leniency, PhoneNumber, PhoneNumberMatcher
from phonenumbers.timezone import time_zones_for_number

from dialsync.models import Phone, PhoneType

from .text import clean_text

# Salesforce field -> dialer phone type, in priority order: when two fields hold the same number
# it is sent once, with the type of the earlier field, and the earliest number decides the zone.
PHONE_FIELDS: tuple[tuple[str, PhoneType], ...] = (
    ("MobilePhone", PhoneType.MOBILE),
    ("Phone", PhoneType.OFFICE),
    ("HomePhone", PhoneType.HOME),
    ("OtherPhone", PhoneType.EXTRA_1),
    ("AssistantPhone", PhoneType.EXTRA_2),
)

# Salesforce phone fields hold at most 40 characters; anything much longer is pasted junk, and
# dropping it before any work keeps a 10,000-character value cheap.
MAX_PHONE_TEXT = 100

# phonenumbers still reports some zones by their pre-2000s names; IANA keeps those only as
# backward-compatibility links, which a dialer's zone validator may not know.
_CANONICAL_ZONES = {
    "Africa/Asmera": "Africa/Asmara",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Godthab": "America/Nuuk",
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Choibalsan": "Asia/Ulaanbaatar",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "Pacific/Enderbury": "Pacific/Kanton",
    "Pacific/Ponape": "Pacific/Pohnpei",
    "Pacific/Truk": "Pacific/Chuuk",
}
# phonenumbers accepts some German direct-dial numbers with 16 or more digits; E.164 allows 15
# and destinations validate against it, so such a number would only be rejected there.
_E164_MAX_DIGITS = 15
_UNKNOWN_ZONE = "Etc/Unknown"
_MAX_ZONE_LENGTH = 35  # Talkdesk's limit for the timezone field


def _find_number(text: str, region: str) -> PhoneNumber | None:
    """The first valid number in ``text``, parsed with ``region`` for national formats."""
    # A plain parse handles the usual shapes and their extensions ("x23", "ext. 5", "#23"). It
    # is skipped when the text reads as a vanity number, because it would turn the letters of
    # "415-555-1212 (cell)" or "1-800-FLOWERS" into digits and could produce a stranger's number.
    if not phonenumbers.is_alpha_number(text):
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            return number
    # Words around a number ("cell: ...", "... ask for Bob") or two numbers in one field: the
    # matcher finds digit runs that form a valid number and never reads letters as digits.
    match = next(iter(PhoneNumberMatcher(text, region, Leniency.VALID)), None)
    return None if match is None else match.number


def parse_phone(value: object, phone_type: PhoneType, region: str) -> Phone | None:
    """A phone field's value as a :class:`Phone`, or None when it holds no valid number.

    ``region`` (ISO-2) is assumed for numbers written without a country code. Never raises.
    """
    if isinstance(value, str) and len(value) > MAX_PHONE_TEXT:
        return None
    text = clean_text(value)
    if text is None or len(text) > MAX_PHONE_TEXT:
        return None
    try:
        number = _find_number(text, region)
        if number is None:
            return None
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        number_region = phonenumbers.region_code_for_number(number)
    except Exception:  # a bug in the third-party parser on odd input must not stop a sync
        return None
    if len(e164) > 1 + _E164_MAX_DIGITS:
        return None
    return Phone(
        number=e164,
        type=phone_type,
        # "001" marks non-geographic numbers (satellite, international freephone): no country.
        region=number_region if number_region in phonenumbers.SUPPORTED_REGIONS else None,
        extension=clean_text(number.extension),
    )


def collect_phones(fields: Mapping[str, object], region: str) -> tuple[Phone, ...]:
    """The contact's valid phones in :data:`PHONE_FIELDS` order, each number once."""
    phones: list[Phone] = []
    seen: set[str] = set()
    for field, phone_type in PHONE_FIELDS:
        phone = parse_phone(fields.get(field), phone_type, region)
        if phone is not None and phone.number not in seen:
            seen.add(phone.number)
            phones.append(phone)
    return tuple(phones)


def phone_timezone(phone: Phone) -> str | None:
    """The IANA zone of the phone's number when the number has exactly one, else None.

    Geographic numbers mostly have one ("+1 415" -> America/Los_Angeles); mobile numbers of a
    multi-zone country, toll-free and non-geographic numbers have many or none.
    """
    try:
        zones = [
            zone
            for zone in time_zones_for_number(phonenumbers.parse(phone.number, None))
            if zone != _UNKNOWN_ZONE
        ]
    except Exception:  # phone.number came from format_number; this is belt and braces
        return None
    if len(zones) != 1:
        return None
    zone = _CANONICAL_ZONES.get(zones[0], zones[0])
    # Newer phonenumbers data may name a zone this pytz does not know yet: better no zone.
    return zone if zone in pytz.all_timezones_set and len(zone) <= _MAX_ZONE_LENGTH else None
