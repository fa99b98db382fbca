"""What a mapping file says, validated, and the mapper and router built from it. Pure.

Every part has a default equal to the default mapping, so an empty file maps exactly like no
file (a test holds that). Phones are parsed, cleaned and zoned by the default mapping's own
helpers; only which fields feed them is configurable here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

import phonenumbers
import pytz
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from dialsync.models import DialerRecord, Phone, PhoneType, Skip, SkipReason, SourceContact

# The default mapping's own definitions: one truth for "an empty file maps like no file".
from .contact import _EXTRA_FIELDS as DEFAULT_EXTRA
from .contact import (
    EMAIL_MAX_LENGTH,
    EXTRA_MAX_LENGTH,
    NAME_FALLBACK,
    NAME_MAX_LENGTH,
    MappingConfig,
    contact_country,
    map_contact,
)
from .contact import _is_true as is_true
from .countries import country_timezone
from .file_text import Loc
from .phones import PHONE_FIELDS, parse_phone, phone_timezone
from .text import clean_and_truncate, clean_text, truncate

if TYPE_CHECKING:
    from dialsync.destinations.base import Destination

OMIT = 0  # priority.default = "none": send no priority (Talkdesk reads that as a hot lead)
# A field, or a relationship path up to SOQL's five levels; also keeps anything but a field
# name out of the SOQL the source builds.
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*){0,4}")
# Record list ids go into URL paths; Talkdesk's are UUIDs. 64 is the sync table's column.
_LIST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EXTRA_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .-]{0,63}")
_ZONE_MAX = 35  # Talkdesk's limit for timezone


def _field_name(value: str) -> str:
    if not _FIELD.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Salesforce field name (e.g. MobilePhone, Account.Type, "
            "Priority__c)"
        )
    return value


def _one_or_many(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _zone(value: str) -> str:
    if value not in pytz.all_timezones_set or len(value) > _ZONE_MAX:
        raise ValueError(f"{value!r} is not an IANA time zone such as America/New_York")
    return value


def _list_id(value: str) -> str:
    if not _LIST_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a record list id (letters, digits, - _ .)")
    return value


def _extra_key(value: str) -> str:
    if not _EXTRA_KEY.fullmatch(value):
        raise ValueError(f"{value!r}: keys are 1..64 letters, digits, spaces, - _ .")
    return value


def _priority_default(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "none":
        return OMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise ValueError(f'must be 1..10, or "none" to send no priority, not {value!r}')
    return value


FieldName = Annotated[str, AfterValidator(_field_name)]
FieldList = Annotated[tuple[FieldName, ...], BeforeValidator(_one_or_many), Field(min_length=1)]
Zone = Annotated[str, AfterValidator(_zone)]
ListId = Annotated[str, AfterValidator(_list_id)]
ExtraKey = Annotated[str, AfterValidator(_extra_key)]
Priority = Annotated[int, Field(ge=1, le=10, strict=True)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamesRule(_Rule):
    first: FieldList = ("FirstName",)  # the first non-blank field wins
    last: FieldList = ("LastName",)
    fallback: str = Field(default=NAME_FALLBACK, min_length=1, max_length=NAME_MAX_LENGTH)


class PriorityRule(_Rule):
    field: FieldName | None = None
    values: dict[str, Priority] | None = None  # picklist value -> 1..10 (case-insensitive)
    scale: tuple[float, float] | None = None  # a numeric field's [low, high] spread over 1..10
    # 1..10, OMIT, or None: DIALSYNC_MAPPING__PRIORITY.
    default: Annotated[int | None, BeforeValidator(_priority_default)] = None


class TimezoneRule(_Rule):
    # phone: the first phone's zone when its number has one, else the mailing country's
    # country: the mailing country's zone only; field: a field holding an IANA zone, else as
    # phone; fixed: always ``zone``; none: never send one.
    strategy: Literal["phone", "country", "field", "fixed", "none"] = "phone"
    field: FieldName | None = None
    zone: Zone | None = None
    fallback: Zone | None = None  # when the strategy finds nothing


class RoutingRule(_Rule):
    field: FieldName
    lists: dict[str, ListId] = Field(min_length=1)  # field value -> record list id
    default: ListId | None = None  # other values; unset: DIALSYNC_TALKDESK__RECORD_LIST_ID


class MappingSpec(_Rule):
    """A mapping file, validated. Built by ``mapping.file.parse_mapping``, which also runs
    :func:`semantic_problems` and reports both with line numbers."""

    phones: dict[FieldName, PhoneType] = Field(default_factory=lambda: dict(PHONE_FIELDS))
    names: NamesRule = NamesRule()
    email: Annotated[FieldName | None, BeforeValidator(_blank_is_none)] = "Email"
    extra_data: dict[ExtraKey, FieldList] = Field(
        default_factory=lambda: {key: names for key, names in DEFAULT_EXTRA}
    )
    do_not_call: Annotated[tuple[FieldName, ...], BeforeValidator(_one_or_many)] = ("DoNotCall",)
    priority: PriorityRule = PriorityRule()
    timezone: TimezoneRule = TimezoneRule()
    routing: RoutingRule | None = None

    def field_refs(self) -> Iterator[tuple[str, Loc]]:
        """Every Salesforce field the file names, with where it names it."""
        for side in ("first", "last"):
            for i, name in enumerate(getattr(self.names, side)):
                yield name, ("names", side, i)
        for name in self.phones:
            yield name, ("phones", name)
        for i, name in enumerate(self.do_not_call):
            yield name, ("do_not_call", i)
        if self.email:
            yield self.email, ("email",)
        for key, names in self.extra_data.items():
            for i, name in enumerate(names):
                yield name, ("extra_data", key, i)
        for loc, name in (
            (("priority", "field"), self.priority.field),
            (("timezone", "field"), self.timezone.field),
            (("routing", "field"), self.routing.field if self.routing else None),
        ):
            if name:
                yield name, loc

    def fields(self) -> tuple[str, ...]:
        """The Salesforce fields to query, each once; the mailing country always, because it
        decides how national phone numbers are read."""
        names = [name for name, _ in self.field_refs()]
        names += ["MailingCountry", "MailingCountryCode"]
        return tuple(dict.fromkeys(names))


def semantic_problems(spec: MappingSpec) -> list[tuple[Loc, str]]:
    """Rules across keys, each reported at the key that breaks it."""
    out: list[tuple[Loc, str]] = []
    types: dict[PhoneType, str] = {}
    for field, kind in spec.phones.items():
        if kind in types:
            out.append((("phones", field), f"{kind.value} is already the type of {types[kind]}"))
        types.setdefault(kind, field)
    if not spec.phones:
        out.append((("phones",), "name at least one phone field"))
    rule = spec.priority
    if rule.values is not None and rule.scale is not None:
        out.append((("priority", "scale"), "give either values (a picklist) or scale, not both"))
    if (rule.values is not None or rule.scale is not None) and rule.field is None:
        out.append((("priority",), "values and scale need priority.field"))
    if rule.scale is not None and not rule.scale[0] < rule.scale[1]:
        out.append((("priority", "scale"), "must be [low, high] with low < high"))
    out += _duplicates(("priority", "values"), rule.values or {})
    zone = spec.timezone
    if zone.strategy == "field" and zone.field is None:
        out.append((("timezone", "strategy"), 'strategy "field" needs timezone.field'))
    if zone.strategy != "field" and zone.field is not None:
        out.append((("timezone", "field"), 'only used with strategy = "field"'))
    if zone.strategy == "fixed" and zone.zone is None:
        out.append((("timezone", "strategy"), 'strategy "fixed" needs timezone.zone'))
    if zone.strategy != "fixed" and zone.zone is not None:
        out.append((("timezone", "zone"), 'only used with strategy = "fixed"'))
    if zone.strategy in ("fixed", "none") and zone.fallback is not None:
        out.append((("timezone", "fallback"), f'not used with strategy = "{zone.strategy}"'))
    if spec.routing is not None:
        out += _duplicates(("routing", "lists"), spec.routing.lists)
    return out


def _duplicates(loc: Loc, values: Mapping[str, object]) -> list[tuple[Loc, str]]:
    seen: dict[str, str] = {}
    out: list[tuple[Loc, str]] = []
    for value in values:
        folded = _fold(value)
        if folded in seen:
            out.append(((*loc, value), f"{value!r} matches {seen[folded]!r}: case is ignored"))
        seen.setdefault(folded, value)
    return out


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


class FileMapper:
    """A ``(SourceContact, MappingConfig) -> DialerRecord | Skip`` from a mapping file.

    Total, like ``map_contact``: whatever the fields hold, it returns, never raises.
    """

    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self._priorities = {_fold(k): v for k, v in (spec.priority.values or {}).items()}

    def __call__(self, contact: SourceContact, config: MappingConfig) -> DialerRecord | Skip:
        if contact.is_deleted:
            return map_contact(contact, config)  # deleted or merged: the same reasons
        fields = contact.fields
        for field in self.spec.do_not_call:
            if is_true(fields.get(field)):
                which = "Do Not Call" if field == "DoNotCall" else field
                return Skip(
                    reason=SkipReason.DO_NOT_CALL, message=f"The contact is marked {which}."
                )
        country = contact_country(fields)
        region = country if country in phonenumbers.SUPPORTED_REGIONS else config.default_region
        phones = self._phones(fields, region)
        if not phones:
            return Skip(reason=SkipReason.NO_VALID_PHONE, message="The contact has no valid phone.")
        email = clean_text(fields.get(self.spec.email)) if self.spec.email else None
        if email is not None and len(email) > EMAIL_MAX_LENGTH:
            email = None
        names = self.spec.names
        return DialerRecord(
            external_provider=config.provider,
            external_id=contact.id,
            # Quoted, as in the default mapping: an odd Id cannot reshape the URL.
            external_url=f"{config.instance_url}/lightning/r/Contact/"
            f"{quote(contact.id, safe='')}/view",
            sync_external_id=True,
            first_name=self._name(fields, names.first),
            last_name=self._name(fields, names.last),
            phones=phones,
            timezone=self._timezone(fields, phones, country),
            priority=self._priority(fields, config),
            extra_data=self._extra(fields, email, phones),
            email=email,
            mailing_country_code=country,
        )

    def _phones(self, fields: Mapping[str, object], region: str) -> tuple[Phone, ...]:
        phones: list[Phone] = []
        for field, kind in self.spec.phones.items():
            phone = parse_phone(fields.get(field), kind, region)
            if phone is not None and phone.number not in {p.number for p in phones}:
                phones.append(phone)
        return tuple(phones)

    def _name(self, fields: Mapping[str, object], names: tuple[str, ...]) -> str:
        for field in names:
            text = clean_and_truncate(fields.get(field), NAME_MAX_LENGTH)
            if text:
                return text
        return self.spec.names.fallback

    def _timezone(
        self, fields: Mapping[str, object], phones: tuple[Phone, ...], country: str | None
    ) -> str | None:
        rule = self.spec.timezone
        if rule.strategy == "none":
            return None
        if rule.strategy == "fixed":
            return rule.zone
        zone = None
        if rule.field is not None:
            text = clean_text(fields.get(rule.field))
            zone = text if text in pytz.all_timezones_set and len(text) <= _ZONE_MAX else None
        if zone is None and rule.strategy != "country":
            zone = next((z for z in map(phone_timezone, phones) if z), None)
        return zone or country_timezone(country) or rule.fallback

    def _priority(self, fields: Mapping[str, object], config: MappingConfig) -> int | None:
        rule = self.spec.priority
        default = config.priority if rule.default is None else rule.default or None
        if rule.field is None:
            return default
        raw = fields.get(rule.field)
        if rule.values is not None:
            text = clean_text(raw)
            return self._priorities.get(_fold(text), default) if text else default
        number = _number(raw)
        if number is None:
            return default
        if rule.scale is not None:
            low, high = rule.scale
            number = 1 + (number - low) * 9 / (high - low)
        return min(10, max(1, math.floor(number + 0.5)))

    def _extra(
        self, fields: Mapping[str, object], email: str | None, phones: tuple[Phone, ...]
    ) -> dict[str, str]:
        extra: dict[str, str] = {} if email is None else {"email": email}
        for key, names in self.spec.extra_data.items():
            for field in names:
                text = clean_and_truncate(fields.get(field), EXTRA_MAX_LENGTH)
                if text:
                    extra[key] = text
                    break
        for phone in phones:
            if phone.extension:
                extra[f"{phone.type.value.lower()}_extension"] = truncate(
                    phone.extension, EXTRA_MAX_LENGTH
                )
        return extra


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
    else:
        text = clean_text(value)
        try:
            number = float(text.replace(",", "")) if text else math.nan
        except ValueError:
            return None
    return number if math.isfinite(number) else None


class ListRouter:
    """Which record list a contact goes to, by one field's value (case-insensitive)."""

    def __init__(self, rule: RoutingRule, default_list: str) -> None:
        self.rule = rule
        self.default_list = default_list
        self._by_value = {_fold(value): list_id for value, list_id in rule.lists.items()}

    @property
    def lists(self) -> tuple[str, ...]:
        """Every list contacts may go to, the default first."""
        return tuple(dict.fromkeys([self.default_list, *self.rule.lists.values()]))

    def list_for(self, contact: SourceContact) -> str:
        text = clean_text(contact.fields.get(self.rule.field))
        return self._by_value.get(_fold(text), self.default_list) if text else self.default_list

    def __call__(self, contact: SourceContact, record: DialerRecord, dest: Destination) -> bool:
        # Routing picks among Talkdesk record lists; other destinations take every contact.
        return dest.name != "talkdesk" or dest.target == self.list_for(contact)
