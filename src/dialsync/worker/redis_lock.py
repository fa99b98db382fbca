"""One pull at a time across every worker and beat: a Redis lock whose TTL is renewed while
the holder runs, so a killed holder frees it within one TTL and a long pull never loses it.

redis-py's ``Lock`` does the owning: a random token, set-if-absent with a TTL, and Lua
scripts that extend (``reacquire``) or delete (``release``) the key only while it still holds
our token. What it lacks is the renewal while the block runs: our thread below."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import redis
from redis.exceptions import LockError, LockNotOwnedError, RedisError
from redis.lock import Lock

from dialsync.errors import LockBusy, TransientError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def redis_lock(client: redis.Redis, name: str, ttl: float = 30.0) -> Iterator[None]:
    """Hold ``name`` for the block or raise LockBusy at once; renewed every ttl/3."""
    # thread_local off: the renewal thread must see the token the acquiring thread got.
    lock = Lock(client, f"dialsync:lock:{name}", timeout=ttl, blocking=False, thread_local=False)
    try:
        got = lock.acquire()
    except RedisError as exc:
        raise TransientError(
            f"Redis unavailable: {exc.__class__.__name__}", system="redis"
        ) from exc
    if not got:
        raise LockBusy(f"another dialsync holds the '{name}' lock", system="redis")
    stop = threading.Event()

    def keep_alive() -> None:
        while not stop.wait(ttl / 3):
            try:
                lock.reacquire()  # back to the full TTL, only while the key is still ours
            except LockNotOwnedError:
                log.error("lost the '%s' lock (expired): another holder may run", name)
                return
            except RedisError as exc:
                log.warning("could not renew the '%s' lock: %s", name, exc)

    thread = threading.Thread(target=keep_alive, name=f"lock-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)
        with contextlib.suppress(LockError, RedisError):
            lock.release()
