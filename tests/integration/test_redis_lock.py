"""The pull lock in Redis: exclusive, renewed while held, never extended or released once it
belongs to someone else."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
import redis

from dialsync.errors import LockBusy, TransientError
from dialsync.worker.redis_lock import redis_lock

pytestmark = pytest.mark.redis

KEY = "dialsync:lock:t"


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def client(broker_url: str) -> redis.Redis:
    return redis.Redis.from_url(broker_url)


def test_the_lock_excludes_a_second_holder_and_is_free_after_the_block(
    client: redis.Redis,
) -> None:
    with redis_lock(client, "t"):
        assert client.exists(KEY)
        with pytest.raises(LockBusy, match="'t' lock"), redis_lock(client, "t"):
            pass
        assert client.exists(KEY)  # the refused attempt took nothing away
    assert not client.exists(KEY)
    with redis_lock(client, "t"):
        pass


def test_a_held_lock_is_renewed_before_its_ttl_runs_out(client: redis.Redis) -> None:
    with redis_lock(client, "t", ttl=3.0):
        _until(lambda: client.pttl(KEY) < 2700, "the TTL to run")
        first = client.pttl(KEY)
        # the TTL only falls unless renewed: seeing it rise again is a renewal
        _until(lambda: client.pttl(KEY) > first, "a renewal")
        assert client.exists(KEY)


def test_a_lock_taken_over_after_expiry_is_neither_extended_nor_released(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), redis_lock(client, "t", ttl=0.6):
        client.set(KEY, "someone-else")  # ours expired and another holder took it (no TTL)
        _until(lambda: "lost the 't' lock" in caplog.text, "the renewal to notice")
        assert client.pttl(KEY) == -1  # not extended by us
    assert client.get(KEY) == b"someone-else"  # not released by us


@pytest.mark.slow
def test_redis_down_is_transient() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    with pytest.raises(TransientError, match="Redis unavailable"), redis_lock(dead, "t"):
        pass
