"""The convergence invariant: what the list must hold, computed from Salesforce alone.

The expected records come from the production mapper applied to the Salesforce sandbox's own
rows (never through the sync), so a record the sync lost, left stale, duplicated, forgot to
remove, or a record not ours that it touched, all show up as a violation line. Whether a
contact may be called at all is also read from the row here without the mapper: a mapper that
let a deleted or Do Not Call contact through would otherwise agree with itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dialsync.destinations.talkdesk import render_record
from dialsync.mapping import CONTACT_FIELDS, MappingConfig, map_contact
from dialsync.models import DialerRecord, Skip, SourceContact
from dialsync.sandbox.talkdesk_validation import WRITABLE_FIELDS, phone_numbers_of

PROVIDER = "salesforce"


@dataclass(frozen=True)
class Expected:
    """Per contact: the record it maps to, or why it must not be in the list."""

    records: dict[str, dict[str, Any]]  # external id -> the full rendered payload
    absent: dict[str, str]  # external id -> reason (do_not_call, deleted, no_valid_phone, ...)
    # On a PHONE_NUMBER list, contacts whose number another callable contact also maps to: the
    # dialer holds at most one of them, so each may be missing (never wrong, never twice).
    contested: frozenset[str] = frozenset()


def expected(
    sf: Any, contact_ids: Iterable[str], config: MappingConfig, unique_identifier_type: str
) -> Expected:
    """Map these contacts as the Salesforce sandbox holds them now (live or in the recycle
    bin; a hard-deleted one is gone) with the production mapper."""
    records: dict[str, dict[str, Any]] = {}
    absent: dict[str, str] = {}
    for contact_id in contact_ids:
        row = sf.contact(contact_id)
        if row is None:
            absent[contact_id] = "hard_deleted"
            continue
        # The model's contacts have no Account: a relationship field reads as null.
        fields = {name: row.get(name) for name in CONTACT_FIELDS}
        contact = SourceContact(
            id=row["Id"],
            system_modstamp=row["SystemModstamp"],
            is_deleted=bool(row["IsDeleted"]),
            master_record_id=row.get("MasterRecordId"),
            fields=fields,
        )
        mapped = map_contact(contact, config)
        barred = _barred(row)
        if barred is not None:
            absent[contact.id] = barred
        elif isinstance(mapped, DialerRecord):
            records[contact.id] = render_record(mapped)
        else:
            assert isinstance(mapped, Skip)
            absent[contact.id] = mapped.reason.value
    contested: set[str] = set()
    if unique_identifier_type == "PHONE_NUMBER":
        holders: dict[str, set[str]] = {}
        for external_id, payload in records.items():
            for number in phone_numbers_of(payload):
                holders.setdefault(number, set()).add(external_id)
        for ids in holders.values():
            if len(ids) > 1:
                contested |= ids
    return Expected(records, absent, frozenset(contested))


def _barred(row: dict[str, Any]) -> str | None:
    """Why the contact must never be in the list, read from the row alone (the model's
    DoNotCall is a boolean; a merged contact is deleted)."""
    if row["IsDeleted"]:
        return "deleted"
    if row.get("DoNotCall") is True:
        return "do_not_call"
    return None


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The fields a record's owner sets; an explicit null is the same as an absent field."""
    return {k: record[k] for k in WRITABLE_FIELDS if record.get(k) is not None}


def _short(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        return (
            "[" + ", ".join(f"{p.get('phone_type')}:{p.get('phone_number')}" for p in value) + "]"
        )
    return repr(value)


def field_diff(want: dict[str, Any], found: dict[str, Any]) -> list[str]:
    want_c, found_c = _comparable(want), _comparable(found)
    out = []
    for name in WRITABLE_FIELDS:
        if want_c.get(name) != found_c.get(name):
            w = _short(want_c[name]) if name in want_c else "(absent)"
            f = _short(found_c[name]) if name in found_c else "(absent)"
            out.append(f"{name}: expected {w}, found {f}")
    return out


@dataclass
class Violations:
    lines: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, line: str) -> None:
        self.kinds[kind] += 1
        self.lines.append(f"{kind}: {line}")

    def __bool__(self) -> bool:
        return bool(self.lines)

    def text(self) -> str:
        return "\n".join(f"  - {line}" for line in self.lines)


def check_convergence(
    want: Expected,
    list_records: Iterable[dict[str, Any]],
    foreign_before: dict[str, dict[str, Any]],
    *,
    only: set[str] | None = None,
    alias: dict[str, str] | None = None,
) -> Violations:
    """THE invariant. The list holds exactly the callable contacts, each once, each with
    exactly the mapped fields; nothing else of ours; every record not ours as it was.

    ``only`` limits the per-contact part to those external ids (what one incremental sync can
    see); records not ours are always checked. ``alias`` names contacts readably (c1, c2...).
    """
    alias = alias or {}
    found = Violations()
    records = list(list_records)
    ours = [r for r in records if r.get("external_provider") == PROVIDER and r.get("external_id")]
    by_external: dict[str, list[dict[str, Any]]] = {}
    for record in ours:
        by_external.setdefault(str(record["external_id"]), []).append(record)

    def name(external_id: str) -> str:
        return f"{alias.get(external_id, '?')} ({external_id})"

    in_scope = set(want.records) | set(want.absent) | set(by_external)
    if only is not None:
        in_scope &= only
    for external_id in sorted(in_scope, key=lambda e: (alias.get(e, "~"), e)):
        held = by_external.get(external_id, [])
        payload = want.records.get(external_id)
        if payload is None:
            reason = want.absent.get(external_id, "not a Salesforce contact")
            for record in held:
                found.add(
                    "extra",
                    f"{name(external_id)} must not be in the list ({reason}); "
                    f"found record {record['id']} {_short(record.get('phone_numbers'))}",
                )
            continue
        if not held:
            if external_id in want.contested:
                continue
            found.add(
                "missing",
                f"{name(external_id)} is callable and not in the list; expected "
                f"{_short(payload['phone_numbers'])} {payload['first_name']} "
                f"{payload['last_name']} tz={payload.get('timezone')}",
            )
            continue
        if len(held) > 1:
            found.add(
                "duplicate",
                f"{name(external_id)} held {len(held)} times: {[r['id'] for r in held]}",
            )
        for record in held:
            diff = field_diff(payload, record)
            if diff:
                found.add("stale", f"{name(external_id)} record {record['id']}: {'; '.join(diff)}")
    now_by_id = {str(r["id"]): r for r in records}
    for record_id, before in foreign_before.items():
        after = now_by_id.get(record_id)
        if after is None:
            found.add("foreign", f"record {record_id} (not ours) was removed")
            continue
        after_c = {k: v for k, v in after.items() if k != "_links"}
        if after_c != before:
            changed = sorted(
                k for k in set(before) | set(after_c) if before.get(k) != after_c.get(k)
            )
            found.add("foreign", f"record {record_id} (not ours) was changed: {changed}")
    return found
