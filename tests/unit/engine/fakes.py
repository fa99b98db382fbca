"""In-memory fakes of the source and destination protocols, and a clock that moves on demand."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dialsync.destinations.base import (
    Capabilities,
    ItemResult,
    Outcome,
    TargetInfo,
    WriteItem,
)
from dialsync.engine import EngineOptions, SyncEngine
from dialsync.errors import DialsyncError
from dialsync.mapping import MappingConfig
from dialsync.models import DialerRecord, Phone, PhoneType, SourceContact
from dialsync.sources.base import DeletedWindow
from tests.unit.engine.memory_store import MemoryStore

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def contact_id(n: int) -> str:
    return f"003{n:015d}"


class FakeSource:
    """Contacts held in memory. Notes the thread each call comes from."""

    instance_url: str | None = "https://example.my.salesforce.com"
    cursor_name = "test:Contact"
    deleted_reach = timedelta(days=15)

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.contacts: dict[str, SourceContact] = {}
        self.deletes: list[tuple[str, datetime]] = []
        self.earliest_available: datetime | None = None
        # SOQL_WHERE: the contacts ``ids()`` lists when scoped (None: all of them)
        self.scope: Callable[[SourceContact], bool] | None = None
        self.calls: list[tuple[str, str]] = []  # (method, thread name)
        self.lock = threading.Lock()

    def _note(self, method: str) -> None:
        with self.lock:
            self.calls.append((method, threading.current_thread().name))

    def put(self, n: int, *, phone: str = "+14155550100", **fields: Any) -> str:
        """Add or edit contact ``n`` (its modstamp is now)."""
        cid = contact_id(n)
        values = {"FirstName": f"First{n}", "LastName": f"Last{n}", "Phone": phone, **fields}
        self.contacts[cid] = SourceContact(
            id=cid, system_modstamp=self.clock(), fields={"Id": cid, **values}
        )
        return cid

    def remove(self, n: int) -> str:
        cid = contact_id(n)
        del self.contacts[cid]
        self.deletes.append((cid, self.clock()))
        return cid

    def open(self) -> None:
        self._note("open")

    def available(self, wanted: Iterable[str]) -> list[str]:
        self._note("available")
        return list(wanted)

    def window(
        self, fields: list[str], start: datetime | None, end: datetime
    ) -> Iterator[SourceContact]:
        self._note("window")
        chosen = [
            c
            for c in self.contacts.values()
            if (start is None or c.system_modstamp >= start) and c.system_modstamp <= end
        ]
        yield from sorted(chosen, key=lambda c: (c.system_modstamp, c.id))

    def by_ids(self, fields: list[str], ids: list[str]) -> Iterator[SourceContact]:
        self._note("by_ids")
        yield from (self.contacts[i] for i in ids if i in self.contacts)

    def ids(self, start: datetime | None = None, scoped: bool = True) -> Iterator[str]:
        self._note("ids")
        yield from (
            i
            for i, c in self.contacts.items()
            if (start is None or c.system_modstamp >= start) and (not scoped or self._within(c))
        )

    def in_scope(self, ids: Iterable[str]) -> set[str]:
        self._note("in_scope")
        return {i for i in ids if i in self.contacts and self._within(self.contacts[i])}

    def _within(self, contact: SourceContact) -> bool:
        return self.scope is None or self.scope(contact)

    def deleted(self, start: datetime, end: datetime) -> DeletedWindow:
        self._note("deleted")
        ids = [i for i, at in self.deletes if start <= at <= end]
        return DeletedWindow(ids, self.earliest_available, end)

    def is_valid_id(self, contact_id: str) -> bool:
        return contact_id.startswith("003") and len(contact_id) == 18

    def close(self) -> None:
        self._note("close")


def mapper(contact: SourceContact, config: MappingConfig) -> DialerRecord:
    f = contact.fields
    return DialerRecord(
        external_provider="salesforce",
        external_id=contact.id,
        external_url=f"{config.instance_url}/{contact.id}",
        first_name=str(f.get("FirstName") or ""),
        last_name=str(f.get("LastName") or ""),
        phones=(Phone(number=str(f["Phone"]), type=PhoneType.MOBILE),),
    )


@dataclass
class Remote:
    record_id: str
    payload: dict[str, Any] | None


@dataclass
class FakeDialer:
    """A record list in memory, with scripted failures."""

    name: str = "dialer"
    target: str = "list-1"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(
            max_batch=100, native_upsert=False, full_replacement=False
        )
    )
    unique_by_external_id: bool = True
    count_known: bool = True
    records: dict[str, Remote] = field(default_factory=dict)  # external id -> record
    # Raised by the next write calls, one each (then writes answer normally).
    failures: list[DialsyncError] = field(default_factory=list)
    # external ids refused: a batch holding one raises what ``refuse_with`` makes
    poison: set[str] = field(default_factory=set)
    refuse_with: Any = None
    # Called with each write call before it lands: a test sends it through a real HTTP client.
    before_write: Callable[[str, Sequence[WriteItem]], object] | None = None
    calls: list[tuple[str, int]] = field(default_factory=list)  # (op, batch size)
    scans: int = 0
    ids: Any = field(default_factory=lambda: iter(range(1, 1_000_000)))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def render(self, record: DialerRecord) -> dict[str, Any]:
        return {
            "first_name": record.first_name,
            "last_name": record.last_name,
            "phones": [p.number for p in record.phones],
        }

    def open(self) -> TargetInfo:
        return TargetInfo(
            name=self.target,
            records_count=len(self.records) if self.count_known else None,
            unique_by_external_id=self.unique_by_external_id,
        )

    def _write(self, op: str, items: Sequence[WriteItem]) -> list[ItemResult] | None:
        with self.lock:
            self.calls.append((op, len(items)))
            if self.failures:
                raise self.failures.pop(0)
        if self.before_write is not None:
            self.before_write(op, items)
        if self.poison & {i.external_id for i in items}:
            raise self.refuse_with(len(items))
        return None

    def create(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        self._write("create", items)
        out = []
        with self.lock:
            for item in items:
                if item.external_id in self.records and self.unique_by_external_id:
                    out.append(ItemResult(item.external_id, Outcome.DUPLICATE, code="DUPLICATE"))
                    continue
                record_id = f"r{next(self.ids)}"
                self.records[item.external_id] = Remote(record_id, item.payload)
                out.append(ItemResult(item.external_id, Outcome.OK, record_id))
        return out

    def update(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        self._write("update", items)
        out = []
        with self.lock:
            for item in items:
                remote = self.records.get(item.external_id)
                if remote is None or remote.record_id != item.record_id:
                    out.append(ItemResult(item.external_id, Outcome.NOT_FOUND))
                    continue
                remote.payload = item.payload
                out.append(ItemResult(item.external_id, Outcome.OK, remote.record_id))
        return out

    def delete(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        self._write("delete", items)
        with self.lock:
            for item in items:
                self.records.pop(item.external_id, None)
        return [ItemResult(i.external_id, Outcome.OK, i.record_id) for i in items]

    def delete_records(self, record_ids: Sequence[str]) -> list[ItemResult]:
        with self.lock:
            self.calls.append(("delete_records", len(record_ids)))
            for external_id, remote in list(self.records.items()):
                if remote.record_id in record_ids:
                    del self.records[external_id]
        return [ItemResult("", Outcome.OK, rid) for rid in record_ids]

    def scan(self) -> Iterator[tuple[str, str]]:
        self.scans += 1
        with self.lock:
            held = [(e, r.record_id) for e, r in self.records.items()]
        yield from held

    def close(self) -> None:
        return None

    def sends(self, op: str) -> list[int]:
        return [n for o, n in self.calls if o == op]


@dataclass
class World:
    clock: Clock
    source: FakeSource
    dialer: FakeDialer
    store: MemoryStore
    engine: SyncEngine


def world(*, push_threads: int = 1, scoped: bool = False, **dialer: Any) -> World:
    clock = Clock()
    source = FakeSource(clock)
    dest = FakeDialer(**dialer)
    store = MemoryStore(clock)
    engine = SyncEngine(
        source=source,
        destinations=[dest],
        store=store,
        options=EngineOptions(
            mapper=mapper, push_threads=push_threads, retry_base_seconds=10, scoped=scoped
        ),
        clock=clock,
        rng=lambda: 1.0,
    )
    return World(clock, source, dest, store, engine)
