"""The pause after credential refusals, one policy for both ways of running the service: the
Celery pull task (refusals counted in Redis, shared by every worker) and `dialsync run`
(counted in its one process). Nothing changes on its own after a refusal, so asking again every
interval only hammers the remote."""

from __future__ import annotations

import logging

from dialsync.errors import DialsyncError, operator_fix


def refusal_backoff(refusals: int, interval: float, cap: float) -> float:
    """After the n-th credential refusal in a row: 2x, 4x, 8x ... the interval, up to cap."""
    return float(min(max(cap, interval), interval * 2**refusals))


def log_refusal(
    log: logging.Logger, what: str, exc: DialsyncError, refusals: int, wait: float
) -> None:
    """The one error line a refusal costs, naming the setting to check and the next try."""
    log.error(
        "%s refused (%s; check %s): refusal %d in a row, backing off: next attempt in %.0f s",
        what,
        exc,
        operator_fix(exc),
        refusals,
        wait,
    )
