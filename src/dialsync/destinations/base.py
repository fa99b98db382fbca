"""The Destination protocol: what the engine needs from a system that receives contacts.

The engine knows only this. Each adapter translates its system's errors into
``dialsync.errors`` at its edge and answers one ItemResult per item it was given.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from dialsync.destinations.capacity import Fill
from dialsync.models import DialerRecord


class Outcome(StrEnum):
    OK = "ok"
    REJECTED = "rejected"  # refused for this record; code says why; retried when it changes
    NOT_FOUND = "not_found"  # an update or delete found no such record in the destination
    # a create clashed with an existing record (ours, maybe: adopt); or an update was refused
    # because another record holds a value that must be unique (its phone number)
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"  # the answer did not say: treat the write as uncertain
    TRANSIENT = "transient"  # failed for now; try later


@dataclass(frozen=True)
class WriteItem:
    external_id: str
    record_id: str | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class ItemResult:
    external_id: str
    outcome: Outcome
    record_id: str | None = None
    code: str | None = None
    message: str = ""


@dataclass(frozen=True)
class TargetInfo:
    """What ``open()`` learnt about the target list or organization."""

    name: str
    records_count: int | None
    # True when the destination refuses a second record with the same external id, so a create
    # whose answer was lost can simply be sent again (the clash is then adopted).
    unique_by_external_id: bool
    unique_identifier_type: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a destination can do, declared once by each adapter; the engine reads only this.

    Whether the target refuses a second record with the same external id is a property of
    the list (Talkdesk: its unique identifier type), so ``open()`` tells it (``TargetInfo``).
    """

    max_batch: int  # the largest batch one call takes (Talkdesk: 100)
    native_upsert: bool  # True: create and update are one upsert by external id
    full_replacement: bool  # True: an omitted field is cleared by an update
    # How long a create the client gave up on (a timeout) may still land: a list scan takes
    # only creates sent longer ago than this as never made. 0: an answer is final.
    settle_seconds: float = 0.0


@runtime_checkable
class Destination(Protocol):
    name: str  # "talkdesk"; rows are keyed by (name, target, external id)
    target: str  # the record list id, or the organization
    capabilities: Capabilities

    def render(self, record: DialerRecord) -> dict[str, Any]:
        """The payload this destination stores for a mapped contact (JSON-able, stable)."""
        ...

    def open(self) -> TargetInfo:
        """Authenticate and check the target exists; TerminalError when it does not."""
        ...

    def create(self, items: Sequence[WriteItem]) -> list[ItemResult]: ...

    def update(self, items: Sequence[WriteItem]) -> list[ItemResult]: ...

    def delete(self, items: Sequence[WriteItem]) -> list[ItemResult]: ...

    def delete_records(self, record_ids: Sequence[str]) -> list[ItemResult]:
        """Delete records by the destination's own id (orphans: duplicates we own)."""
        ...

    def scan(self) -> Iterator[tuple[str, str]]:
        """(external id, record id) of every record of ours in the target."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Bounded(Protocol):
    """A destination whose target holds a bounded number of records (Talkdesk's record list):
    metrics, ``doctor`` and ``plan`` say how full it is."""

    def fill(self) -> Fill | None:
        """The target's count at ``open()`` plus this run's creates, minus its removals, and
        its limit. None: the target did not say its count."""
        ...


@runtime_checkable
class ResolvesIds(Protocol):
    """A destination that looks up numeric ids for configured names at ``open()``
    (Everbridge's record type and contact paths): ``doctor`` shows what it found."""

    def resolved_ids(self) -> dict[str, dict[str, int]]:
        """{"record type": {name: id}, "paths": {name: id}}."""
        ...


@runtime_checkable
class ContentScan(Protocol):
    """A destination whose list scan also reads each record's content (Talkdesk): the full
    reconciliation rewrites records edited by hand."""

    def scan_contents(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(external id, record id, the record in payload form) of every record of ours:
        only the fields ``render()`` owns, so it equals the payload we sent when unchanged."""
        ...
