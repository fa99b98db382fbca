"""The ContactSource protocol: what the engine needs from the system contacts come from.

The engine knows only this module. What is particular to a system (its record Ids, how far
back its delete log reaches, the name its cursor is kept under) is declared by the source,
so the engine never holds Salesforce knowledge. Each adapter translates its library's
errors into ``dialsync.errors`` at its edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from dialsync.models import SourceContact


@dataclass(frozen=True)
class DeletedWindow:
    """The source's delete log for a window (Salesforce: getDeleted)."""

    ids: list[str]
    # The oldest moment the log still answers for: a window starting earlier may have lost
    # deletes, and the engine then reconciles every Id instead.
    earliest_available: datetime | None
    # Up to where the log was read: the next window starts there.
    latest_covered: datetime | None
    # When each was deleted, as the log says (Salesforce: deletedDate): the moment the
    # contact became not callable, which the compliance history keeps.
    deleted_at: Mapping[str, datetime] = field(default_factory=dict)


class ContactSource(Protocol):
    instance_url: str | None
    # The name the engine keeps this source's cursor under in the store.
    cursor_name: str
    # How far back ``deleted()`` answers at most; an older window reconciles every Id.
    deleted_reach: timedelta

    def open(self) -> None: ...

    def available(self, wanted: Iterable[str]) -> list[str]:
        """The fields of ``wanted`` this source has (plus those it always reads)."""
        ...

    def window(
        self, fields: list[str], start: datetime | None, end: datetime
    ) -> Iterator[SourceContact]:
        """Contacts (deleted ones included) changed in [start, end], in (modstamp, Id) order."""
        ...

    def by_ids(self, fields: list[str], ids: list[str]) -> Iterator[SourceContact]:
        """Contacts by Id (only Ids ``is_valid_id`` accepts), deleted ones included."""
        ...

    def ids(self, start: datetime | None = None, scoped: bool = True) -> Iterator[str]:
        """Ids of live contacts (within the source's scope when ``scoped``)."""
        ...

    def in_scope(self, ids: Iterable[str]) -> set[str]:
        """Which of these Ids ``ids()`` would list now: live contacts within the scope. Asks
        about these Ids only, so a run that re-reads a few contacts does not list them all."""
        ...

    def deleted(self, start: datetime, end: datetime) -> DeletedWindow: ...

    def is_valid_id(self, contact_id: str) -> bool:
        """Whether ``contact_id`` can name a contact of this source at all."""
        ...

    def close(self) -> None: ...
