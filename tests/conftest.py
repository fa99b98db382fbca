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


REDIS_URL = os.environ.get("DIALSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REQUIRE_REDIS = os.environ.get("DIALSYNC_TEST_REQUIRE_REDIS") == "1"


def _redis_ok() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


_REDIS = _redis_ok()
_redis_db = iter(range(1, 16))


@pytest.fixture
def broker_url() -> str:
    """A Redis database of its own for the test, emptied first."""
    if not _REDIS:
        if REQUIRE_REDIS:
            pytest.fail(f"Redis is required but not reachable at {REDIS_URL}")
        pytest.skip("Redis not reachable (set DIALSYNC_TEST_REDIS_URL)")
    import redis

    db = next(_redis_db, 15)
    url = f"{REDIS_URL}/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def pg_url() -> str:
    return postgres_url()
