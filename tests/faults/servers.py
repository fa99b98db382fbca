"""Private Redis and PostgreSQL servers for the fault suite.

A case that restarts Redis or PostgreSQL must never disturb the shared services other tests (and
other people) use, so it starts its own: ``redis-server`` on a free port without persistence, and
a throw-away PostgreSQL cluster (``initdb`` + ``pg_ctl``, run as the ``postgres`` user when the
suite runs as root) in a temporary directory. Every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from tests import reaper
from tests.integration.service import free_port


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class PrivateRedis:
    """``redis-server --save '' --appendonly no`` on a free port: a restart loses everything."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dialsync-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        # Stopped with the run when it is killed: the server of the last (re)start, by the pid
        # it wrote (never whatever else may hold the port by then).
        reaper.start(os.getpid(), self.dir, ["pkill", "-9", "-F", str(self.dir / "server.pid")])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> PrivateRedis:
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.dir)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        (self.dir / "server.pid").write_text(str(self.proc.pid))
        _wait(self._ping, 20, f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # like a crash: nothing is saved (there is no persistence anyway)
            self.proc.wait(timeout=20)
        self.proc = None

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")],
    )
    return Path(candidates[-1]).parent if candidates else None


def redis_binary() -> str | None:
    return shutil.which("redis-server")


class PrivatePostgres:
    """A throw-away cluster on a free port, trust auth on 127.0.0.1, no fsync."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dialsync-pg-"))
        self.data = self.dir / "data"
        self.restarts = 0
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:  # initdb refuses to run as root
            import pwd

            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no postgres user") from None
            self._owner = (entry.pw_uid, entry.pw_gid)
            os.chown(self.dir, *self._owner)
        reaper.start(
            os.getpid(),
            self.dir,
            self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t60", "stop"),
        )

    def _cmd(self, *args: str) -> list[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *command] if self._owner else command

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")

    def init(self) -> PrivatePostgres:
        self._run(
            *("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"),
            *("--no-sync", "--no-instructions"),
        )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        log = str(self.dir / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t60", "stop")

    def restart(self, down_seconds: float = 1.0) -> None:
        """Stop (fast: every connection is cut, like a failover), stay down, start again."""
        self.stop("fast")
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, migrated database of its own; returns its URL."""
        from dialsync.store import migrate

        name = f"faults_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))  # a generated identifier, no input
        admin.dispose()
        engine = create_engine(self.url(name))
        migrate.upgrade(engine)
        engine.dispose()
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
