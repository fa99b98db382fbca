"""Shared fixtures: state databases (SQLite and Postgres) and the loopback sandboxes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get(
    "DIALSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# CI sets this so a missing Postgres fails loudly instead of skipping.
REQUIRE_PG = os.environ.get("DIALSYNC_TEST_REQUIRE_POSTGRES") == "1"


def _pg_ok() -> bool:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


_PG = _pg_ok()


def reset_postgres() -> None:
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        for table in (
            "sync_records",
            "dialer_orphans",
            "cursors",
            "list_state",
            "runs",
            "alembic_version",
        ):
            conn.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    engine.dispose()


def postgres_url() -> str:
    if not _PG:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but not reachable at {PG_URL}")
        pytest.skip("PostgreSQL not reachable (set DIALSYNC_TEST_POSTGRES_URL)")
    reset_postgres()
    from dialsync.store import migrate

    engine = create_engine(PG_URL)
    migrate.upgrade(engine)
    engine.dispose()
    return PG_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return postgres_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def sandboxes(tmp_path: Path) -> Iterator[object]:
    from dialsync.sandbox.harness import Sandboxes

    with Sandboxes(tmp_path / "box") as box:
        yield box
