"""The fault suite's private servers never outlive a killed test run (see reaper.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.servers import postgres_bindir, redis_binary

pytestmark = [pytest.mark.faults]

HOLDER = """
import json, sys, time
from tests.faults.servers import PrivatePostgres, PrivateRedis, postgres_bindir, redis_binary
redis = PrivateRedis(redis_binary()).start()
pg = PrivatePostgres(postgres_bindir())
pg.init()
pg.start()
out = {"ports": [redis.port, pg.port], "dirs": [str(redis.dir), str(pg.dir)]}
print(json.dumps(out), flush=True)
time.sleep(600)
"""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_servers_of_a_killed_run_are_stopped_and_their_files_removed() -> None:
    if redis_binary() is None or postgres_bindir() is None:
        pytest.skip("needs redis-server and the PostgreSQL server binaries")
    root = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        started = json.loads(holder.stdout.readline())
        assert all(listening(port) for port in started["ports"])
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no close(), no atexit: as a CI timeout does
        holder.wait(timeout=20)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = [p for p in started["ports"] if listening(p)]
        left += [d for d in started["dirs"] if Path(d).exists()]
        if not left:
            return
        time.sleep(0.5)
    raise AssertionError(f"still there a minute after the run was killed: {left}")
