"""A request rate shared by every worker process, kept in Redis.

GCRA (a leaky bucket as one timestamp): each request takes the next free slot, 1/rate apart,
computed atomically in Lua with Redis's own clock, so workers on different hosts agree. A 429's
Retry-After moves the next free slot for everyone: every worker pauses, not only the one that got
it. Celery's own ``rate_limit`` is per worker and cannot do either.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import redis
from redis.exceptions import RedisError

# Returns the milliseconds to wait before sending. Slots are spaced by ARGV[1] microseconds.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', 60000)
return math.floor((slot - now) / 1000)
"""
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < until_ then redis.call('SET', KEYS[1], until_, 'PX', 600000) end
return 0
"""
# Requests leave a worker at their slot but reach the server after network jitter; spacing them
# at 90% of the limit keeps any one-second window at or under it.
_MARGIN = 0.9


class RedisRateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        name: str,
        per_second: float | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = f"dialsync:rate:{name}"
        self.interval_us = int(1_000_000 / (per_second * _MARGIN)) if per_second else 0
        self.sleep = sleep
        self._take = client.register_script(_TAKE)
        self._pause = client.register_script(_PAUSE)

    def acquire(self) -> None:
        try:
            wait_ms = int(self._take(keys=[self.key], args=[self.interval_us]))
        except RedisError:
            return  # no Redis: send anyway; the destination's 429s still slow us down
        if wait_ms > 0:
            self.sleep(wait_ms / 1000)

    def pause(self, seconds: float) -> None:
        with contextlib.suppress(RedisError):
            self._pause(keys=[self.key], args=[int(seconds * 1_000_000)])
