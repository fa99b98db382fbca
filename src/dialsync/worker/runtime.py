"""What a worker process holds: settings, one SyncEngine, one Redis client.

Built lazily in each process after the fork (sockets and DB pools must not cross a fork), and
reused across tasks so tokens and the org's describe() are not fetched for every task.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace

import redis

from dialsync.engine import SyncEngine
from dialsync.settings import Settings, load_settings
from dialsync.store.locks import writer_lock
from dialsync.store.store import SqlSyncStore

_lock = threading.RLock()
_settings: Settings | None = None
_engine: SyncEngine | None = None
_store: SqlSyncStore | None = None
_redis: redis.Redis | None = None

PULL_LOCK = "sync"  # the same name `dialsync sync` takes: a CLI sync and the service exclude


def settings() -> Settings:
    global _settings
    with _lock:
        if _settings is None:
            _settings = load_settings()
        return _settings


def redis_client() -> redis.Redis | None:
    global _redis
    url = settings().broker_url
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    with _lock:
        if _redis is None:
            _redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return _redis


def store() -> SqlSyncStore:
    """The state database this process's engine, locks and alerts share."""
    global _store
    with _lock:
        if _store is None:
            from dialsync.wiring import build_store

            _store = build_store(settings())
        return _store


def engine() -> SyncEngine:
    global _engine
    with _lock:
        if _engine is None:
            from dialsync.wiring import build_engine

            engine = build_engine(settings(), store(), limiter_client=redis_client())
            # Parallelism comes from the push tasks the pull fans out, one call each.
            engine.options = replace(engine.options, push_threads=1)
            _engine = engine
        return _engine


def reset() -> None:
    """After a fork, or when settings change (tests)."""
    global _settings, _engine, _redis, _store
    with _lock:
        _settings = _engine = _redis = _store = None


@contextlib.contextmanager
def pull_guard() -> Iterator[None]:
    """One pull at a time: the Redis lock (renewed while held), then the database's own lock,
    which also excludes a `dialsync sync` run by hand. Raises LockBusy when either is held."""
    from dialsync.worker.redis_lock import redis_lock

    client = redis_client()
    with contextlib.ExitStack() as stack:
        if client is not None:
            stack.enter_context(redis_lock(client, PULL_LOCK))
        engine()  # built here, as before: a missing setting fails before the database lock
        stack.enter_context(writer_lock(store().engine, PULL_LOCK))
        yield
