"""Shared fixtures: state databases (SQLite and Postgres), Redis, and the loopback sandboxes.

The test run shares the machine's PostgreSQL and Redis with other programs, so it never touches
what it did not create: every Postgres test gets a database of its own (``dialsync_t_<run>_<n>``,
dropped when its test ends, or else when the run ends), and Redis tests use a private
``redis-server`` that the run starts on a free port and stops at the end. Both are named per run
(and per xdist worker), so two runs on one machine, or ``pytest -n auto``, never meet.

A run that is killed cleans nothing up; the next run does, and only what a dead run left:
a Postgres database is dropped when no session holds its run's advisory lock (a run holds it
from before its first database until it exits, and Postgres lets go of it when the run's
connection dies), a private redis-server when the test process that started it is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text

from tests import reaper

# The server the run creates its databases on (any database on it that we may connect to).
PG_URL = os.environ.get(
    "DIALSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# CI sets this so a missing Postgres fails loudly instead of skipping.
REQUIRE_PG = os.environ.get("DIALSYNC_TEST_REQUIRE_POSTGRES") == "1"
# The run's key: in its database names and in the advisory lock that says the run is alive.
RUN_KEY = random.SystemRandom().randrange(1, 2**31)
RUN_ID = f"k{RUN_KEY}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
# (classid, objid) of the two-key advisory lock: objid is the run's key.
_LOCK_CLASS = 0x0D1A1
_OURS = re.compile(r"dialsync_t_k(\d+)_")


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
_pg_counter = itertools.count(1)
_pg_created: list[str] = []
_owner: list[Connection] = []  # the connection holding this run's advisory lock


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


def _drop_created_databases() -> None:
    if not _pg_created:
        return
    admin = _admin_engine()
    with admin.connect() as conn:
        for name in _pg_created:
            with contextlib.suppress(Exception):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    _pg_created.clear()
    for owner in _owner:  # our databases are gone: the lock may go
        owner.close()


atexit.register(_drop_created_databases)


def _claim_run() -> None:
    """Take this run's lock, then drop what dead runs left (before our first database, so a
    sweep elsewhere never sees one of ours unlocked)."""
    if _owner:
        return
    conn = _admin_engine().connect()
    taken = conn.execute(
        text("SELECT pg_try_advisory_lock(CAST(:c AS integer), CAST(:k AS integer))"),
        {"c": _LOCK_CLASS, "k": RUN_KEY},
    ).scalar_one()
    assert taken, f"run key {RUN_KEY} is held by another run"
    _owner.append(conn)
    names = conn.execute(text("SELECT datname FROM pg_database")).scalars().all()
    live = set(
        conn.execute(
            text(
                "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid::bigint = :c AND objsubid = 2 AND granted"
            ),
            {"c": _LOCK_CLASS},
        ).scalars()
    )
    for name in names:
        match = _OURS.match(name)
        if match and int(match.group(1)) not in live:
            with contextlib.suppress(Exception):  # another sweep may be dropping it too
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _create_database(name: str, template: str | None = None) -> None:
    _claim_run()
    # generated identifiers, no input; on the run's own (autocommit) connection
    copy = f' TEMPLATE "{template}"' if template else ""
    _owner[0].execute(text(f'CREATE DATABASE "{name}"{copy}'))
    _pg_created.append(name)


def drop_database(url: str) -> None:
    """Drop a database of this run now: at its test's end, while the other workers' tests
    run, rather than with all the others when the run ends (~0.1 s each). One that cannot be
    dropped yet is left for the end of the run."""
    name = url.rsplit("/", 1)[1]
    if name not in _pg_created or not _owner:
        return
    try:
        _owner[0].execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:
        return
    _pg_created.remove(name)


def _url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + name


_pg_template: list[str] = []


def _migrated_template() -> str:
    """A database migrated once per run (and xdist worker): every test database copies it."""
    if not _pg_template:
        name = f"dialsync_t_{RUN_ID}_template".lower()
        _create_database(name)
        from dialsync.store import migrate

        engine = create_engine(_url(name))
        migrate.upgrade(engine)
        engine.dispose()  # CREATE DATABASE ... TEMPLATE needs nobody connected to it
        _pg_template.append(name)
    return _pg_template[0]


def postgres_url() -> str:
    """A fresh, migrated database of this run's own; dropped when the run ends."""
    if not _PG:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but not reachable at {PG_URL}")
        pytest.skip("PostgreSQL not reachable (set DIALSYNC_TEST_POSTGRES_URL)")
    name = f"dialsync_t_{RUN_ID}_{next(_pg_counter)}".lower()
    # Copying a migrated database is a file copy; running the migrations for every test was not.
    _create_database(name, template=_migrated_template())
    return _url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    url = postgres_url()
    yield url
    drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def sandboxes(tmp_path: Path) -> Iterator[object]:
    from dialsync.sandbox.harness import Sandboxes

    with Sandboxes(tmp_path / "box") as box:
        yield box


# An explicit server is the operator's choice (its DB numbers are flushed); by default the run
# starts a private redis-server, so nobody else's data can be touched.
EXPLICIT_REDIS_URL = os.environ.get("DIALSYNC_TEST_REDIS_URL")
REQUIRE_REDIS = os.environ.get("DIALSYNC_TEST_REQUIRE_REDIS") == "1"
_REDIS_DATABASES = 256


class _RunRedis:
    """A redis-server of this test run's own, started on first use."""

    def __init__(self) -> None:
        self.base: str | None = None
        self.error: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir: str | None = None
        self.dbs = itertools.count(1)

    def url(self) -> str | None:
        if self.base is None and self.error is None:
            self._start()
        return self.base

    def _start(self) -> None:
        if EXPLICIT_REDIS_URL:
            self.base = EXPLICIT_REDIS_URL.rstrip("/")
            return
        binary = shutil.which("redis-server")
        if binary is None:
            self.error = "redis-server is not installed (or set DIALSYNC_TEST_REDIS_URL)"
            return
        import redis

        from tests.integration.service import free_port

        port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"{_REDIS_DIR_PREFIX}{os.getpid()}-")
        self.proc = subprocess.Popen(
            [
                *(binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", self.dir),
                *("--databases", str(_REDIS_DATABASES)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # A killed run leaves no server behind: the reaper stops it when this process is gone.
        reaper.start(os.getpid(), Path(self.dir), ["kill", "-9", str(self.proc.pid)])
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    self.base = f"redis://127.0.0.1:{port}"
                    atexit.register(self.close)
                    return
            time.sleep(0.05)
        self.close()
        self.error = f"the private redis-server on port {port} did not start"

    def next_db(self) -> int:
        if self.proc is not None:  # our own server: every number but 0 is ours
            mine = list(range(1, _REDIS_DATABASES))
        else:
            mine = shared_redis_dbs(
                os.environ.get("PYTEST_XDIST_WORKER"),
                int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
            )
        return mine[(next(self.dbs) - 1) % len(mine)]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


_REDIS_DIR_PREFIX = "dialsync-test-redis-"  # then the test process's pid


def shared_redis_dbs(worker: str | None, workers: int, databases: int = 16) -> list[int]:
    """The DB numbers of an explicit server that this xdist worker may flush and use.

    Every worker of the run talks to that one server, so each takes its own share of 1..15
    (0 is left alone); with the same numbers two workers would flush each other's data.
    """
    index = int(worker.removeprefix("gw")) if worker else 0
    mine = [db for db in range(1, databases) if (db - 1) % max(workers, 1) == index]
    if not mine:
        pytest.fail(f"{workers} workers share {databases - 1} Redis DB numbers: use fewer (-n)")
    return mine


_RUN_REDIS = _RunRedis()


@pytest.fixture
def broker_url() -> str:
    """A Redis database of its own for the test, on the run's private server, emptied first."""
    base = _RUN_REDIS.url()
    if base is None:
        if REQUIRE_REDIS:
            pytest.fail(f"Redis is required but not available: {_RUN_REDIS.error}")
        pytest.skip(f"Redis not available: {_RUN_REDIS.error}")
    import redis

    url = f"{base}/{_RUN_REDIS.next_db()}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = postgres_url()
    yield url
    drop_database(url)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests (marked ``slow``) first, each group in its collected order.

    Most of them wait (for a beat, a backoff, a lock's TTL) far more than they compute. Started
    first, while ``scripts/test`` hands out one test at a time to whichever worker is free
    (``--dist load --maxschedchunk 1``), they wait while the short tests keep the cores busy;
    started last, they would end the run late. Order only: every test still runs, alone in its
    own databases and sandboxes, whatever ran before it.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable
