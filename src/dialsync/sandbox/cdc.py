"""The sandbox's ContactChangeEvent: its Avro schema and how one change is encoded.

Shaped like Salesforce's change events: a ``ChangeEventHeader`` record (entityName, recordIds,
changeType, changeOrigin, transactionKey, sequenceNumber, commitTimestamp, commitNumber,
commitUser, nulledFields, diffFields, changedFields) followed by the entity's fields, each a
union with null. ``changedFields`` is a bitmap of field positions written as a hex string, as
Salesforce sends it over the Pub/Sub API. The schema id is a fingerprint of the schema text.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import fastavro

CHANGE_TYPES = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
)
_AVRO_TYPES = {"boolean": "boolean", "datetime": "long"}  # everything else is a string
_LEFT_OUT = ("Id", "IsDeleted", "SystemModstamp")  # not fields of a change event


def _header_schema() -> dict[str, Any]:
    strings = {"type": "array", "items": "string"}
    return {
        "type": "record",
        "name": "ChangeEventHeader",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": strings},
            {
                "name": "changeType",
                "type": {"type": "enum", "name": "ChangeType", "symbols": list(CHANGE_TYPES)},
            },
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": strings},
            {"name": "diffFields", "type": strings},
            {"name": "changedFields", "type": strings},
        ],
    }


class ChangeEventSchema:
    """The Avro schema of ContactChangeEvent for the sandbox's Contact fields."""

    def __init__(self, fields: Iterable[tuple[str, str]]) -> None:
        self.fields = [(name, kind) for name, kind in fields if name not in _LEFT_OUT]
        record = {
            "type": "record",
            "name": "ContactChangeEvent",
            "namespace": "com.sforce.eventbus",
            "fields": [
                {"name": "ChangeEventHeader", "type": _header_schema()},
                *(
                    {
                        "name": name,
                        "type": ["null", _AVRO_TYPES.get(kind, "string")],
                        "default": None,
                    }
                    for name, kind in self.fields
                ),
            ],
        }
        self.json = json.dumps(record, separators=(",", ":"))
        self.id = hashlib.sha256(self.json.encode()).hexdigest()[:22]
        self._parsed = fastavro.parse_schema(record)
        self._position = {name: i + 1 for i, (name, _) in enumerate(self.fields)}

    def bitmap(self, names: Iterable[str]) -> list[str]:
        """Changed fields as Salesforce writes them: bit n = the n-th field of the schema."""
        bits = 0
        for name in names:
            if name in self._position:
                bits |= 1 << self._position[name]
        return [f"0x{bits:X}"] if bits else []

    def encode(
        self,
        *,
        change_type: str,
        record_ids: list[str],
        changed: Iterable[str],
        at: datetime,
        transaction_key: str,
        sequence: int,
        values: Mapping[str, Any] | None = None,
    ) -> bytes:
        values = values or {}
        changed = list(changed)
        body: dict[str, Any] = {
            "ChangeEventHeader": {
                "entityName": "Contact",
                "recordIds": record_ids,
                "changeType": change_type,
                "changeOrigin": "com/salesforce/api/rest/62.0",
                "transactionKey": transaction_key,
                "sequenceNumber": sequence,
                "commitTimestamp": int(at.timestamp() * 1000),
                "commitNumber": sequence,
                "commitUser": "005000000000000AAA",
                "nulledFields": [f for f in changed if values.get(f) is None and f in values],
                "diffFields": [],
                "changedFields": self.bitmap(changed),
            }
        }
        for name, _kind in self.fields:
            value = values.get(name) if name in changed else None
            if isinstance(value, datetime):
                value = int(value.timestamp() * 1000)
            body[name] = value
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self._parsed, body)
        return out.getvalue()
