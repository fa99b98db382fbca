"""Helpers for the engine's integration tests: run a cycle, read the list, count calls."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from dialsync.engine import RunReport, SyncEngine
from dialsync.sandbox.harness import Sandboxes
from dialsync.store.locks import writer_lock
from dialsync.wiring import build_engine, build_store


def engine_for(box: Sandboxes, db_url: str, **overrides: Any) -> SyncEngine:
    settings = box.settings(db_url, **overrides)
    return build_engine(settings, build_store(settings))


def run(box: Sandboxes, db_url: str, **kw: Any) -> RunReport:
    overrides = kw.pop("settings", {})
    clock = kw.pop("clock", None)
    prepare: Callable[[SyncEngine], None] | None = kw.pop("prepare", None)
    engine = engine_for(box, db_url, **overrides)
    if clock is not None:
        engine.clock = engine.store.clock = clock
    if prepare is not None:  # a test's hook into the built engine (record sleeps, observers)
        prepare(engine)
    try:
        with writer_lock(engine.store.engine, "sync"):
            return engine.sync(**kw)
    finally:
        engine.close()


def ours(box: Sandboxes) -> dict[str, dict[str, Any]]:
    """Our records in the list by external id; fails on a duplicate."""
    records = [
        r for r in box.talkdesk.records(box.list_id) if r.get("external_provider") == "salesforce"
    ]
    counts = Counter(r["external_id"] for r in records)
    dupes = {k: n for k, n in counts.items() if n > 1}
    assert not dupes, f"duplicate external ids in the list: {dupes}"
    return {r["external_id"]: r for r in records}


def writes(box: Sandboxes) -> int:
    return int(box.talkdesk.stats()["writes"])


def phone(n: int) -> str:
    """A distinct valid US number (415 area) per n."""
    return f"+1 415 555 {n % 10000:04d}" if n < 10000 else f"+1 212 55{n % 100000:05d}"


def person(n: int, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "FirstName": f"First{n}",
        "LastName": f"Last{n}",
        "MobilePhone": f"(415) 2{n % 100:02d}-{n % 10000:04d}",
        "MailingCountry": "United States",
    }
    fields.update(extra)
    return fields
