"""A stop flag for the long-running commands (`dialsync run`, `dialsync stream`).

SIGTERM (a service manager, `docker stop`) and SIGINT (Ctrl-C) set the flag; the command's loop
sees it between steps, so a stop never cuts a batch between the dialer's answer and its commit.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


def stop_on_signals(what: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT; ``what`` completes the log line "signal N: ..."."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: %s", signum, what)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
