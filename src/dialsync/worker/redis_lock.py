"""One pull at a time across every worker and beat: a Redis lock whose TTL is renewed while
the holder runs, so a killed holder frees it within one TTL and a long pull never loses it."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator

import redis
from redis.exceptions import RedisError

from dialsync.errors import LockBusy, TransientError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def redis_lock(client: redis.Redis, name: str, ttl: float = 30.0) -> Iterator[None]:
    """Hold ``name`` for the block or raise LockBusy at once; renewed every ttl/3."""
    token = uuid.uuid4().hex
    key = f"dialsync:lock:{name}"
    try:
        got = client.set(key, token, nx=True, px=int(ttl * 1000))
    except RedisError as exc:
        raise TransientError(
            f"Redis unavailable: {exc.__class__.__name__}", system="redis"
        ) from exc
    if not got:
        raise LockBusy(f"another dialsync holds the '{name}' lock", system="redis")
    stop = threading.Event()
    # Renew only while we still own it (compare-and-extend), so a lock that expired and was taken
    # by someone else is never extended by us.
    renew = client.register_script(
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
    )
    release = client.register_script(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
        "else return 0 end"
    )

    def keep_alive() -> None:
        while not stop.wait(ttl / 3):
            try:
                if not renew(keys=[key], args=[token, int(ttl * 1000)]):
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
        with contextlib.suppress(RedisError):
            release(keys=[key], args=[token])
