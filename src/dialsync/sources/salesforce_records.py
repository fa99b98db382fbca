"""What Salesforce's REST answers look like: Contact records (relationship fields nested,
``attributes`` keys, datetimes in Salesforce's form) and the JSON body of an error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from simple_salesforce.exceptions import SalesforceError

from dialsync.models import SourceContact


def soql_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_sf_datetime(value: str) -> datetime:
    # "2026-11-22T07:54:32.000+0000"
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested relationship objects become dotted names; ``attributes`` keys are dropped."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict) and "attributes" in value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def to_contact(record: dict[str, Any]) -> SourceContact:
    fields = flatten(record)
    return SourceContact(
        id=str(fields["Id"]),
        system_modstamp=parse_sf_datetime(str(fields["SystemModstamp"])),
        is_deleted=bool(fields.get("IsDeleted")),
        master_record_id=fields.get("MasterRecordId") or None,
        fields=fields,
    )


def error_content(exc: SalesforceError) -> Any:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0]
    return content if isinstance(content, dict) else {}


def error_code(exc: SalesforceError) -> str | None:
    code = error_content(exc).get("errorCode")
    return str(code) if code else None


def error_message(exc: SalesforceError) -> str:
    return str(error_content(exc).get("message") or exc.__class__.__name__)[:500]
