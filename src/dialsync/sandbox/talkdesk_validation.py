"""Record rules of the Talkdesk Record Lists fake: field checks, uniqueness, bulk request bodies.

Pure functions over plain dicts, so ``talkdesk.py`` stays about HTTP, tokens and faults. The rules
follow ``shared/reference/talkdesk-record-lists.md`` and the seed pages 000, 001 and 004.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from functools import cache
from typing import Any

Record = dict[str, Any]

UNIQUE_IDENTIFIER_TYPES = ("EXTERNAL", "PHONE_NUMBER", "NOTHING")
PHONE_TYPES = frozenset({"HOME", "OFFICE", "MOBILE", "EXTRA_1", "EXTRA_2", "EXTRA_3"})
# fullmatch and [0-9]: ``$`` would accept a trailing newline and ``\d`` any Unicode digit
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
MAX_BULK = 100  # the bulk counters are documented as 0..100; more answers 400
NAME_MAX = 80  # first_name / last_name: 1..80 characters
PHONE_MAX = 20  # phone_number: 1..20 characters
TIMEZONE_MAX = 35  # timezone: 1..35 characters

# What a client may set, in the order records are shown. Anything else in the input is ignored:
# the read-only fields because the reference says so, unknown keys because the vendor drops them.
WRITABLE_FIELDS = (
    "phone_numbers",
    "first_name",
    "last_name",
    "timezone",
    "priority",
    "external_provider",
    "external_id",
    "external_url",
    "sync_external_id",
    "extra_data",
)
RECORD_PATH = re.compile(r"/records/([^/]+)")


class BadRequest(Exception):
    """A request-level 400: the whole call is refused and nothing is applied."""

    def __init__(self, code: str, message: str, fields: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            out["fields"] = self.fields
        return out


@dataclass(frozen=True)
class FieldError:
    code: str  # one of the documented per-record codes
    field: str  # the input field it is about, for the single-create 400's ``fields``


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def writable(data: dict[str, Any]) -> Record:
    """The client-settable fields of ``data``, in display order."""
    return {name: data[name] for name in WRITABLE_FIELDS if name in data}


def phone_numbers_of(record: Record) -> set[str]:
    phones = record.get("phone_numbers")
    if not isinstance(phones, list):
        return set()
    return {
        p["phone_number"]
        for p in phones
        if isinstance(p, dict) and isinstance(p.get("phone_number"), str)
    }


def external_ref_of(record: Record) -> tuple[str, str] | None:
    provider, external_id = record.get("external_provider"), record.get("external_id")
    if isinstance(provider, str) and isinstance(external_id, str) and provider and external_id:
        return provider, external_id
    return None


@dataclass
class UniquenessIndex:
    """Who holds which external ref and phone number in one list.

    Kept for every list type (deletes by external ref or phone use it too) so that uniqueness
    checks and deletes stay O(1) on the large lists the benchmarks build.
    """

    by_external: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    by_phone: dict[str, set[str]] = field(default_factory=dict)

    def add(self, record_id: str, record: Record) -> None:
        ref = external_ref_of(record)
        if ref is not None:
            self.by_external.setdefault(ref, set()).add(record_id)
        for number in phone_numbers_of(record):
            self.by_phone.setdefault(number, set()).add(record_id)

    def remove(self, record_id: str, record: Record) -> None:
        ref = external_ref_of(record)
        if ref is not None:
            self._discard(self.by_external, ref, record_id)
        for number in phone_numbers_of(record):
            self._discard(self.by_phone, number, record_id)

    def external_owners(self, ref: tuple[str, str]) -> set[str]:
        return set(self.by_external.get(ref, ()))

    def phone_owners(self, number: str) -> set[str]:
        return set(self.by_phone.get(number, ()))

    @staticmethod
    def _discard(index: dict[Any, set[str]], key: Any, record_id: str) -> None:
        owners = index.get(key)
        if owners is not None:
            owners.discard(record_id)
            if not owners:
                del index[key]


def _valid_phone(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    number, kind = entry.get("phone_number"), entry.get("phone_type")
    return (
        isinstance(number, str)
        and 1 <= len(number) <= PHONE_MAX
        and E164.fullmatch(number) is not None
        and kind in PHONE_TYPES
    )


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _flat_object(value: Any) -> bool:
    # "extra_data: flat object shown to the agent": nested objects or arrays are refused
    return isinstance(value, dict) and all(
        v is None or isinstance(v, str | int | float | bool) for v in value.values()
    )


def record_errors(
    record: Record,
    unique_identifier_type: str,
    index: UniquenessIndex,
    record_id: str | None = None,
) -> list[FieldError]:
    """Every per-record error of ``record`` in a list; ``record_id`` is excluded from uniqueness."""
    errors: list[FieldError] = []

    def add(code: str, name: str) -> None:
        if all(e.code != code for e in errors):
            errors.append(FieldError(code, name))

    phones = record.get("phone_numbers")
    if phones is None or phones == []:
        add("PHONE_NUMBER_MISSING", "phone_numbers")
    elif not isinstance(phones, list) or not all(_valid_phone(p) for p in phones):
        add("PHONE_NUMBER_INVALID", "phone_numbers")

    for name in ("first_name", "last_name"):
        value = record.get(name)
        if value is None or value == "":
            add(f"{name.upper()}_MISSING", name)
        elif not isinstance(value, str) or len(value) > NAME_MAX:
            add(f"{name.upper()}_INVALID", name)

    timezone = record.get("timezone")  # null is taken as absent, like priority
    if timezone is not None and not (
        isinstance(timezone, str)
        and 1 <= len(timezone) <= TIMEZONE_MAX
        and timezone in _timezones()
    ):
        add("TIMEZONE_INVALID", "timezone")

    priority = record.get("priority")  # absent or null means "hot lead"
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 10
    ):
        add("PRIORITY_INVALID", "priority")

    has_provider = _given(record.get("external_provider"))
    has_external_id = _given(record.get("external_id"))
    if has_provider != has_external_id:
        add("EXTERNAL_REF_MISSING", "external_provider" if has_external_id else "external_id")
    for name in ("external_provider", "external_id", "external_url"):
        if record.get(name) is not None and not isinstance(record[name], str):
            add("OTHER", name)
    sync = record.get("sync_external_id")
    if sync is not None and not isinstance(sync, bool):
        add("OTHER", "sync_external_id")
    extra = record.get("extra_data")
    if extra is not None and not _flat_object(extra):
        add("OTHER", "extra_data")

    others = {record_id} if record_id is not None else set()
    if unique_identifier_type == "EXTERNAL":
        ref = external_ref_of(record)
        if ref is None:
            add("EXTERNAL_REF_MISSING", "external_id")
        elif index.external_owners(ref) - others:
            add("EXTERNAL_ID_AND_PROVIDER_NOT_UNIQUE", "external_id")
    elif unique_identifier_type == "PHONE_NUMBER" and any(
        index.phone_owners(n) - others for n in phone_numbers_of(record)
    ):
        add("PHONE_NUMBER_NOT_UNIQUE", "phone_numbers")
    return errors


def apply_operation(current: Record, op: str, value: dict[str, Any]) -> Record:
    """The record after one PATCH operation; ``current`` is left untouched."""
    changes = writable(value)
    if (
        op == "add"
        and isinstance(changes.get("extra_data"), dict)
        and isinstance(current.get("extra_data"), dict)
    ):
        changes["extra_data"] = {**current["extra_data"], **changes["extra_data"]}
    # "add" of any other field sets it, as a JSON Patch add on an existing member does
    return {**current, **changes}


# -- request bodies --------------------------------------------------------------------------


def _check_batch(payload: Any, what: str) -> list[Any]:
    if not isinstance(payload, list):
        raise BadRequest("INVALID_BODY", f"{what} must be a JSON array")
    if not payload:
        raise BadRequest("INVALID_BODY", f"{what} must hold at least one item")
    if len(payload) > MAX_BULK:
        raise BadRequest(
            "TOO_MANY_RECORDS",
            f"at most {MAX_BULK} records per request, got {len(payload)}",
            [{"name": what, "description": f"size must be between 1 and {MAX_BULK}"}],
        )
    return payload


def _item_error(name: str, description: str) -> BadRequest:
    return BadRequest(
        "INVALID_BODY", f"{name}: {description}", [{"name": name, "description": description}]
    )


def parse_bulk_create(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or "records" not in payload:
        raise BadRequest("INVALID_BODY", 'body must be an object {"records": [...]}')
    records = _check_batch(payload["records"], "records")
    for i, item in enumerate(records):
        if not isinstance(item, dict):
            raise _item_error(f"records[{i}]", "must be an object")
    return records


@dataclass(frozen=True)
class Operation:
    op: str
    record_id: str
    value: dict[str, Any]


def parse_bulk_update(payload: Any) -> list[Operation]:
    operations = []
    for i, item in enumerate(_check_batch(payload, "operations")):
        if not isinstance(item, dict):
            raise _item_error(f"[{i}]", "must be an object")
        op, path, value = item.get("op"), item.get("path"), item.get("value")
        if op not in ("replace", "add"):
            raise _item_error(f"[{i}].op", 'must be "replace" or "add"')
        match = RECORD_PATH.fullmatch(path) if isinstance(path, str) else None
        if match is None:
            raise _item_error(f"[{i}].path", "must be /records/{record_id}")
        if not isinstance(value, dict):
            raise _item_error(f"[{i}].value", "must be an object")
        operations.append(Operation(op, match.group(1), value))
    return operations


@dataclass(frozen=True)
class Selector:
    item: dict[str, Any]  # as sent, echoed back in failed_records
    record_id: str | None = None
    external_ref: tuple[str, str] | None = None
    phone_number: str | None = None


def parse_bulk_delete(payload: Any) -> list[Selector]:
    selectors = []
    for i, item in enumerate(_check_batch(payload, "records")):
        if not isinstance(item, dict):
            raise _item_error(f"[{i}]", "must be an object")
        kinds = [k for k in ("id", "external_provider", "external_id", "phone_number") if k in item]
        # exactly one selector kind per item: an ambiguous item is a client bug worth a 400
        if kinds == ["id"] and _nonempty_str(item["id"]):
            selectors.append(Selector(item, record_id=item["id"]))
        elif kinds == ["external_provider", "external_id"] and (
            _nonempty_str(item["external_provider"]) and _nonempty_str(item["external_id"])
        ):
            ref = (item["external_provider"], item["external_id"])
            selectors.append(Selector(item, external_ref=ref))
        elif kinds == ["phone_number"] and _nonempty_str(item["phone_number"]):
            selectors.append(Selector(item, phone_number=item["phone_number"]))
        else:
            raise _item_error(
                f"[{i}]", 'must be {"id"}, {"external_provider", "external_id"} or {"phone_number"}'
            )
    return selectors


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""
