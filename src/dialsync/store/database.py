"""The state database: connecting to it, and its transactions.

SQLAlchemy Core with bound parameters only. Every store operation is one short transaction,
so a crash between two of them leaves a state the next run can read and finish.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from dialsync.errors import ConfigError, TransientError, first_line, summary
from dialsync.store import migrate

Clock = Callable[[], datetime]
T = TypeVar("T")
CHUNK = 500  # ids per IN (...) clause: well under SQLite's and Postgres's parameter limits


def utcnow() -> datetime:
    return datetime.now(UTC)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_AFTER_COMMIT = "dialsync_after_commit"


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the transaction of ``conn`` (one of ``Database.tx``) committed:
    what reports a write (a metric) must not report one that was rolled back."""
    waiting: list[Callable[[], None]] | None = conn.info.get(_AFTER_COMMIT)
    if waiting is None:
        raise RuntimeError("after_commit needs a connection of Database.tx()")
    waiting.append(callback)


class Database:
    """An engine, the clock the store stamps rows with, and the write transaction."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        # SQLite has one writer at a time, and threads of one process waiting on its busy
        # handler sleep in growing steps: queueing them on a lock here is far faster.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @contextlib.contextmanager
    def tx(self) -> Iterator[Connection]:
        """One write transaction. A lost or locked database is transient, not a crash.
        What ``after_commit`` was given runs once it committed (never when it rolled back)."""
        committed: list[Callable[[], None]] = []
        with self._write_lock:
            try:
                with self.engine.begin() as conn:
                    conn.info[_AFTER_COMMIT] = committed
                    try:
                        yield conn
                    finally:  # the DBAPI connection goes back to the pool: forget the list
                        conn.info.pop(_AFTER_COMMIT, None)
            except (OperationalError, InterfaceError) as exc:
                raise TransientError(
                    f"state database unavailable: {exc.__class__.__name__}: "
                    f"{first_line(exc.orig) if exc.orig else ''}",
                    system="store",
                ) from exc
        for callback in committed:
            callback()

    def read(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for reads (no write lock: SQLite's WAL lets readers run beside it)."""
        return self.engine.connect()


def connect(url: str, *, auto_migrate: bool = True) -> Engine:
    """An engine at the current schema; SQLite is created and migrated on first use, Postgres
    needs `db upgrade` (unless ``auto_migrate`` is off: the caller checks the schema)."""
    sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"future": True}
    if sqlite:
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:
        raise ConfigError(
            f"DIALSYNC_DATABASE_URL is invalid: {exc}", setting="DIALSYNC_DATABASE_URL"
        ) from None
    if sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets `dialsync status` read while a sync writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    try:
        current = migrate.is_current(engine)
    except SQLAlchemyError as exc:
        raise TransientError(
            f"cannot open the state database: {summary(exc)}",
            system="store",
        ) from None
    if not current:
        if sqlite and auto_migrate:
            migrate.upgrade(engine)
        elif auto_migrate:
            raise ConfigError(
                "the state database is not at the current schema: run `dialsync db upgrade`",
                setting="DIALSYNC_DATABASE_URL",
            )
    return engine
