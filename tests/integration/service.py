"""Run dialsync's service commands as real processes for the tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dialsync.sandbox.harness import Sandboxes
from tests.cli_fork import run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(box: Sandboxes, pg_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of `dialsync worker/beat/...` against the sandboxes, beat every 2 s."""
    return {
        **box.env(pg_url),
        "DIALSYNC_BROKER_URL": broker_url,
        "DIALSYNC_SYNC__INTERVAL_SECONDS": "2",
        **extra,
    }


FLOWER_AUTH = ("ops", "s3cret-pw")


def flower_env(port: int) -> dict[str, str]:
    """`dialsync flower` on 127.0.0.1:port behind FLOWER_AUTH (it refuses to start without)."""
    user, password = FLOWER_AUTH
    return {
        "DIALSYNC_FLOWER__USER": user,
        "DIALSYNC_FLOWER__PASSWORD": password,
        "DIALSYNC_FLOWER__PORT": str(port),
        "DIALSYNC_FLOWER__ADDRESS": "127.0.0.1",
    }


def wait_until(
    check: Callable[[], bool], timeout: float = 60, every: float = 0.5, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Processes:
    """Starts `dialsync ...` subprocesses in their own sessions; stops them all at the end."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}
        # No /metrics unless a test asks for a port: workers of parallel tests (and of other
        # runs on this machine) would otherwise all want 9808, and a taken port stops a worker.
        self.env = {**base, "DIALSYNC_METRICS__PORT": "", **env}
        self.cwd = cwd
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, name: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.cwd / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "dialsync.cli", *args],
            env={**self.env, **env},
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), self.env, self.cwd, timeout)  # see tests/cli_fork.py

    @staticmethod
    def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def log(self, name: str) -> str:
        return (self.cwd / f"{name}.log").read_text(errors="replace")


@contextlib.contextmanager
def processes(env: dict[str, str], cwd: Path) -> Iterator[Processes]:
    procs = Processes(env, cwd)
    try:
        yield procs
    finally:
        procs.stop_all()
