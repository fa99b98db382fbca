"""Which process owns a claim or a run, and whether it is still alive.

A claim's owner is ``host:pid:instance.token``; a run row records its host and pid. A process
of this host that no longer exists cannot finish what it started, so its claims are freed and
its runs marked interrupted.
"""

from __future__ import annotations

import os
import socket


def host(width: int) -> str:
    """This host's name, cut to the column it is stored in."""
    return socket.gethostname()[:width]


def claim_prefix(instance: str) -> str:
    """The owner prefix of claims made by this process's store ``instance``."""
    return f"{host(30)}:{os.getpid()}:{instance}."


def dead_here(owner: str, on_host: str) -> bool:
    """A claim owner on ``on_host`` whose process is gone."""
    owner_host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    return owner_host == on_host and pid_text.isdigit() and pid_gone(int(pid_text))


def pid_gone(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False
