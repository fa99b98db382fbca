"""The sync engine: pull a window -> map -> diff into the sync table -> push -> move the cursor.

It knows only the protocols (``sources.base``, ``destinations.base``, ``store.protocol``). The
rooms, each one idea:

- ``facade``: ``SyncEngine``, the one door the CLI, the Celery tasks and the tests use;
- ``frame``: the run frame, which orders the steps and hands work between rooms;
- ``context``: ``RunContext``, what one run knows;
- ``pull`` (window, ingest, deletes, re-reads by Id) and ``reconcile`` (Ids gone from the source);
- ``push`` (claim, send, halving, strikes, threads) and ``outcome`` (answers recorded);
- ``scan`` (list scans, adoption);
- ``report``: options, the run's report, the observer hooks.
"""

from __future__ import annotations

from dialsync.engine.context import DOWN_AFTER, LEASE_SECONDS, OPS, RunContext, canonical, key
from dialsync.engine.facade import SyncEngine
from dialsync.engine.pull import PULL_BATCH
from dialsync.engine.report import EngineOptions, Observer, RunReport
from dialsync.sources.base import ContactSource

__all__ = [
    "DOWN_AFTER",
    "LEASE_SECONDS",
    "OPS",
    "PULL_BATCH",
    "ContactSource",
    "EngineOptions",
    "Observer",
    "RunContext",
    "RunReport",
    "SyncEngine",
    "canonical",
    "key",
]
