"""Stops a private server when the test run that started it is gone.

``close()`` stops the tests' private Redis and PostgreSQL servers at a normal end; a run killed
(SIGKILL, a CI timeout) never gets there, and its servers would keep their ports and temporary
directories for good. So each server gets a reaper: a small process of its own session that
waits while the run's process and the server's directory both exist. When the directory goes
(``close()`` ran) it just exits; when the run goes first it runs the stop commands and removes
the directory.

    python -m tests.reaper PID DIR -- CMD ARGS [-- CMD ARGS ...]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dialsync.store.processes import pid_gone  # the store's test of a claim's owner


def start(watched: int, directory: Path, *commands: list[str]) -> None:
    """Start a reaper for ``directory``; it outlives the caller on purpose."""
    argv = [sys.executable, "-m", "tests.reaper", str(watched), str(directory)]
    for command in commands:
        argv += ["--", *command]
    subprocess.Popen(
        argv,
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def main(argv: list[str]) -> int:
    watched, directory = int(argv[0]), Path(argv[1])
    # Out of the checkout it was started in (a worktree may be removed before the run is
    # killed): pg_ctl and others refuse to run in a directory that no longer exists.
    os.chdir("/")
    commands: list[list[str]] = []
    for word in argv[2:]:
        if word == "--":
            commands.append([])
        else:
            commands[-1].append(word)
    while not pid_gone(watched) and directory.exists():
        time.sleep(1)
    if not directory.exists():
        return 0  # stopped and cleaned up by the run itself
    for command in commands:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(command, timeout=60, check=False, capture_output=True)
    shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
