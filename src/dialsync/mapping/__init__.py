"""Salesforce Contact -> neutral dialer record mapping: pure functions, no I/O."""

from __future__ import annotations

from .contact import (
    CONTACT_FIELDS,
    NAME_FALLBACK,
    OPTIONAL_FIELDS,
    MappingConfig,
    contact_country,
    map_contact,
)
from .countries import country_timezone, resolve_country
from .phones import PHONE_FIELDS, collect_phones, parse_phone, phone_timezone
from .text import clean_text, truncate

__all__ = [
    "CONTACT_FIELDS",
    "NAME_FALLBACK",
    "OPTIONAL_FIELDS",
    "PHONE_FIELDS",
    "MappingConfig",
    "clean_text",
    "collect_phones",
    "contact_country",
    "country_timezone",
    "map_contact",
    "parse_phone",
    "phone_timezone",
    "resolve_country",
    "truncate",
]
