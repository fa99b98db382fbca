"""Change events decoded: Avro payloads read with the schema ``GetSchema`` gave, cached by id."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fastavro

from dialsync.errors import TerminalError

SYSTEM = "salesforce-pubsub"
# The change types of a ChangeEventHeader: the first four are ordinary changes, GAP_* say a
# change happened whose event could not be built (only the Ids are known), GAP_OVERFLOW that
# one transaction changed more than 100,000 records (no Ids at all).
ORDINARY = ("CREATE", "UPDATE", "DELETE", "UNDELETE")
OVERFLOW = "GAP_OVERFLOW"


@dataclass(frozen=True)
class ChangeEvent:
    replay_id: bytes
    change_type: str
    entity: str
    record_ids: tuple[str, ...]
    commit_time: datetime | None
    transaction_key: str
    sequence: int

    @property
    def is_overflow(self) -> bool:
        return self.change_type == OVERFLOW


class SchemaCache:
    """Parsed Avro schemas by schema id; ``fetch`` (GetSchema) runs once per id."""

    def __init__(self, fetch: Callable[[str], str]) -> None:
        self._fetch = fetch
        self._parsed: dict[str, Any] = {}

    def get(self, schema_id: str) -> Any:
        if schema_id not in self._parsed:
            try:
                self._parsed[schema_id] = fastavro.parse_schema(json.loads(self._fetch(schema_id)))
            except (ValueError, fastavro.schema.SchemaParseException) as exc:
                raise TerminalError(
                    f"unusable event schema {schema_id}: {exc}", system=SYSTEM
                ) from None
        return self._parsed[schema_id]

    def __len__(self) -> int:
        return len(self._parsed)

    def decode(self, schema_id: str, payload: bytes, replay_id: bytes) -> ChangeEvent:
        try:
            body = fastavro.schemaless_reader(io.BytesIO(payload), self.get(schema_id), None)
        except (ValueError, EOFError, IndexError) as exc:
            raise TerminalError(
                f"cannot decode a change event ({exc.__class__.__name__})", system=SYSTEM
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("ChangeEventHeader"), dict):
            raise TerminalError("a change event without a ChangeEventHeader", system=SYSTEM)
        header = body["ChangeEventHeader"]
        stamp = header.get("commitTimestamp")
        return ChangeEvent(
            replay_id=replay_id,
            change_type=str(header.get("changeType") or ""),
            entity=str(header.get("entityName") or ""),
            record_ids=tuple(str(i) for i in header.get("recordIds") or ()),
            commit_time=datetime.fromtimestamp(stamp / 1000, UTC) if stamp else None,
            transaction_key=str(header.get("transactionKey") or ""),
            sequence=int(header.get("sequenceNumber") or 0),
        )
