"""What a worker process holds: settings, one SyncEngine, one Redis client.

The settings are read once per process: the `dialsync worker` command hands over the ones it
checked (``use``), or the first caller reads them; a forked pool process keeps them (they hold no
socket). The engine, the store and the Redis client are built lazily in each process after the fork
(sockets and DB pools must not cross a fork), and reused across tasks so tokens and the org's
describe() are not fetched for every task.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import redis

from dialsync.settings import Settings, load_settings

if TYPE_CHECKING:
    from celery import Celery

    from dialsync.engine import SyncEngine
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


def use(checked: Settings) -> None:
    """The settings this process runs with, already read and checked by the command."""
    global _settings
    with _lock:
        _settings = checked


def celery_app(checked: Settings) -> Celery:
    """The Celery app, configured from the settings a command read and checked: the process
    (and the pool it forks) does not read them again."""
    use(checked)
    from dialsync.worker.celery_app import app

    return app


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


def after_fork() -> None:
    """In a new pool process: the parent's engine, store and Redis client hold its sockets."""
    global _engine, _redis, _store
    with _lock:
        _engine = _redis = _store = None


def reset() -> None:
    """When settings change (tests): everything is read and built again."""
    global _settings
    with _lock:
        after_fork()
        _settings = None


@contextlib.contextmanager
def pull_guard() -> Iterator[None]:
    """One pull at a time: the Redis lock (renewed while held), then the database's own lock,
    which also excludes a `dialsync sync` run by hand. Raises LockBusy when either is held."""
    from dialsync.store.locks import writer_lock
    from dialsync.worker.redis_lock import redis_lock

    client = redis_client()
    with contextlib.ExitStack() as stack:
        if client is not None:
            stack.enter_context(redis_lock(client, PULL_LOCK))
        engine()  # built here, as before: a missing setting fails before the database lock
        stack.enter_context(writer_lock(store().engine, PULL_LOCK))
        yield
