"""One writer at a time per state database, released by the OS if the process dies.

PostgreSQL: a session advisory lock on a dedicated connection. SQLite: ``flock`` on a file
beside the database. Neither outlives a killed process, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text

from dialsync.errors import LockBusy


def _key(name: str) -> int:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise ValueError("the SQLite state database must be a file for locking to work")
    return Path(database)


@contextlib.contextmanager
def writer_lock(engine: Engine, name: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the named lock for the block; raise LockBusy when not had within wait_seconds."""
    deadline = time.monotonic() + wait_seconds
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            while True:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)})
                if got.scalar():
                    break
                conn.rollback()
                if time.monotonic() >= deadline:
                    raise LockBusy(f"another dialsync holds the '{name}' lock", system="store")
                time.sleep(0.5)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                conn.commit()
        return
    path = _sqlite_path(engine).with_suffix(f".{name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"another dialsync holds the '{name}' lock", system="store"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
