"""Run `python -m dialsync.cli ...` as a real child process, minus the interpreter's import bill.

Most of the suite's CPU went to starting the command: every `dialsync` subprocess spent about a
second importing the same third-party libraries (pydantic, SQLAlchemy, alembic,
simple-salesforce, httpx, ...) before doing a few milliseconds of work. A fork server pays that
once per test process: it imports those libraries (and nothing of dialsync), then forks a child
per command. The child takes the caller's stdin/stdout/stderr, working directory, environment
and argv, and runs ``dialsync.cli`` as ``__main__`` exactly as ``python -m`` does, so every line
of dialsync (its imports included) runs fresh in the child, under the test's environment. Its
exit status, output and a timeout come back as from ``subprocess.run``.

Libraries that read the environment when imported (prometheus-client, Celery) are not
preloaded. ``DIALSYNC_TEST_CLI_FORK=0`` turns the server off: every command is then a plain
``subprocess.run`` (as it is anyway where fork or Unix sockets are missing).
``DIALSYNC_TEST_CLI_PRELOAD=1`` (``scripts/test`` sets it, but for the fault suite) preloads
more (``PRELOAD_MORE``), dialsync's own modules among them: see there.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

# Third-party modules every `dialsync` command imports; none reads the environment on import.
PRELOAD = (
    "click",
    "pydantic",
    "pydantic_settings",
    "dotenv",
    "sqlalchemy",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "alembic.command",
    "alembic.config",
    "alembic.runtime.migration",
    "alembic.script",
    "alembic.op",
    "requests",
    "httpx",
    "simple_salesforce",
    "jwt",
    "cryptography.x509",
    "phonenumbers",
)
# With DIALSYNC_TEST_CLI_PRELOAD=1 (scripts/test sets it, but for the fault suite) the server
# imports these as well: more libraries a command imports, and dialsync's own modules but the
# command's (dialsync.cli) and those that import a library that reads the environment (the
# metrics, the worker, the stream; prometheus-client, Celery, grpc, redis are not preloaded).
# dialsync's settings are read when a command runs, never on import: what a command does is the
# same; it only starts from those modules instead of executing them (~0.07 s CPU a command).
PRELOAD_MORE = (
    "httpcore",
    "h11",
    "anyio",
    "pytz",
    "sqlite3",
    "http.server",
    "wsgiref.simple_server",
    "difflib",
    "netrc",
    "dialsync.wiring",
    "dialsync.cli_ops",
    "dialsync.cli_compliance",
    "dialsync.cli_resync",
    "dialsync.cli_sandbox",
    "dialsync.cli_service",
    "dialsync.cli_stream",
    "dialsync.alerts.conditions",
    "dialsync.plan",
    "dialsync.preview",
    "dialsync.render",
    "dialsync.preflight",
)
MODULE = "dialsync.cli"
ENABLED = os.environ.get("DIALSYNC_TEST_CLI_FORK", "1") != "0"
MORE = os.environ.get("DIALSYNC_TEST_CLI_PRELOAD") == "1"
NOT_PRELOADED = ("prometheus_client", "celery", "kombu", "billiard", "grpc", "redis")


def _recv_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    fds = array.array("i")
    data = b""
    while not data.endswith(b"\n"):
        msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(3 * fds.itemsize))
        if not msg:
            raise EOFError
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        data += msg
    return json.loads(data), list(fds)


def _serve(path: str) -> dict[str, Any] | None:
    """The server's loop; returns (in a command's child only) the request to run."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    print("ready", flush=True)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the per-request watchers reap themselves
    parent = os.getppid()
    listener.settimeout(2)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the test process is gone (killed): so are we
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    os.rmdir(os.path.dirname(path))
                os._exit(0)
            continue
        conn.setblocking(True)
        if os.fork() != 0:
            conn.close()
            continue
        # The watcher: forks the command, reports its pid, waits, reports its status.
        listener.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        request, fds = _recv_request(conn)
        pid = os.fork()
        if pid == 0:
            conn.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            return request
        for fd in fds:
            os.close(fd)
        conn.sendall(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
        os._exit(0)


def _text(fd: int, mode: str, **options: Any) -> io.TextIOWrapper:
    raw = open(fd, mode, closefd=False)  # noqa: SIM115 - the interpreter's stream, never closed
    return io.TextIOWrapper(raw, encoding="utf-8", **options)


def _become_command(request: dict[str, Any]) -> None:
    """In the command's child: the state `python -m dialsync.cli ARGS` starts in."""
    cwd = str(request["cwd"])
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [MODULE, *request["args"]]
    sys.path[0] = cwd  # `-m` puts the working directory first
    # New standard streams on the descriptors just received, set up as at interpreter start.
    sys.stdin = _text(0, "rb")
    sys.stdout = _text(1, "wb", line_buffering=os.isatty(1))
    sys.stderr = _text(2, "wb", errors="backslashreplace", line_buffering=True)
    for name in ("stdin", "stdout", "stderr"):  # what the interpreter started with, too
        setattr(sys, f"__{name}__", getattr(sys, name))


def main() -> None:
    import gc
    import importlib

    more = sys.argv[2:] == ["--more"]
    for name in PRELOAD + (PRELOAD_MORE if more else ()):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    if more:  # a module above must not have pulled one of these in
        pulled = sorted({m.split(".")[0] for m in sys.modules} & set(NOT_PRELOADED))
        assert not pulled, f"preloaded modules imported {pulled}"
    # Out of the collector's sight: a child that collected them would write to (and so copy)
    # every page of the preloaded heap.
    gc.freeze()
    request = _serve(sys.argv[1])
    if request is None:
        return
    _become_command(request)
    import runpy

    # What `python -m` calls; uncaught exceptions and SystemExit end the interpreter as there.
    runpy._run_module_as_main(MODULE, alter_argv=True)  # type: ignore[attr-defined]


class _Server:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.path = ""
        self.failed = False

    def socket_path(self) -> str | None:
        with self.lock:
            if self.proc is None and not self.failed:
                self._start()
            return None if self.failed else self.path

    def _start(self) -> None:
        folder = tempfile.mkdtemp(prefix="dialsync-cli-fork-")
        self.path = str(Path(folder) / "server.sock")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}
        root = str(Path(__file__).resolve().parent.parent)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_fork", self.path, *(["--more"] if MORE else [])],
            env=clean,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            self.failed = True
        atexit.register(self.close, folder)

    def close(self, folder: str) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(folder)


_SERVER = _Server()


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([python, -m, dialsync.cli, *args], env=env, cwd=cwd, text=True,
    capture_output=True, timeout=timeout)``, the child forked from the preloaded server."""
    argv = [sys.executable, "-m", MODULE, *args]
    path = _SERVER.socket_path() if ENABLED and hasattr(os, "fork") else None
    if path is None:
        return subprocess.run(
            argv, env=env, cwd=cwd, text=True, capture_output=True, timeout=timeout, check=False
        )
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = json.dumps({"args": args, "env": env, "cwd": str(Path(cwd).resolve())})
        socket.send_fds(conn, [request.encode() + b"\n"], [null, out_w, err_w])
    finally:
        for fd in (null, out_w, err_w):
            os.close(fd)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}

    def drain(fd: int) -> None:
        with open(fd, "rb", closefd=True) as pipe:
            chunks[fd].append(pipe.read())

    readers = [threading.Thread(target=drain, args=(fd,), daemon=True) for fd in chunks]
    for reader in readers:
        reader.start()
    with conn, conn.makefile("rb") as answers:
        conn.settimeout(timeout)
        pid = int(answers.readline())
        try:
            code = answers.readline().strip()
            # As subprocess.run: the output is whole only at the pipes' end, which a process
            # the command left behind can hold open; then it is a timeout, never cut output.
            for reader in readers:
                reader.join(timeout)
            if any(reader.is_alive() for reader in readers):
                raise TimeoutError
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(argv, timeout) from None

    def text(fd: int) -> str:  # decoded as subprocess.run(text=True) decodes
        return io.TextIOWrapper(io.BytesIO(b"".join(chunks[fd])), encoding="utf-8").read()

    return subprocess.CompletedProcess(argv, int(code), text(out_r), text(err_r))


if __name__ == "__main__":
    main()
