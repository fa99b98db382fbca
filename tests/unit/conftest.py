"""Fixtures of the store's unit tests: a migrated store on each database ``db_url`` gives
(a SQLite file, and Postgres: a database of its own), its clock standing still."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dialsync.store.store import SqlSyncStore, open_store
from tests.unit.stores import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[SqlSyncStore]:
    s = open_store(db_url, clock=clock)
    yield s
    s.engine.dispose()
