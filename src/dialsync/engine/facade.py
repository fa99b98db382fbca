"""SyncEngine: the one door the CLI, the Celery tasks and the tests use.

It holds what lives as long as the process (the source, the destinations, the store, the
options, the clock) and, for each run, builds a ``RunContext`` and hands it to the run frame
(``frame.py``), which orders the rooms: pull, push, scan, reconciliation.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from dialsync.destinations.base import Destination, TargetInfo
from dialsync.engine import frame
from dialsync.engine.context import RunContext, SourceView
from dialsync.engine.report import EngineOptions, Observer, RunReport
from dialsync.errors import DialsyncError
from dialsync.remap import MappingWatch, TargetChange
from dialsync.sources.base import ContactSource
from dialsync.store.protocol import SyncStore


class SyncEngine:
    def __init__(
        self,
        *,
        source: ContactSource,
        destinations: Sequence[Destination],
        store: SyncStore,
        options: EngineOptions | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self.destinations = list(destinations)
        self.store = store
        self.options = options or EngineOptions()
        self.clock = clock
        self.rng = rng
        self.observer = Observer()
        # What each target's open() answered, kept across runs (alerts and checks read it).
        self.targets: dict[str, TargetInfo] = {}
        # The last run's failed destinations, and the targets it re-rendered.
        self.failed: dict[str, DialsyncError] = {}
        self.remapped: dict[str, TargetChange] = {}
        # Targets whose mapping changed since their rows were rendered: re-rendered this pull.
        self.mapping_watch = MappingWatch(store)
        self._view = SourceView()  # the source's fields, once it has opened

    # -- entry points ------------------------------------------------------------------------
    def sync(self, *, full: bool = False, dry_run: bool = False, force: bool = False) -> RunReport:
        """One cycle. ``full`` ignores the cursor; ``force`` (resync --all) resends everything."""
        kind = "plan" if dry_run else "resync" if force else "full" if full else "sync"
        return self._run(
            kind,
            lambda ctx: frame.cycle(ctx, full=full or force, dry_run=dry_run, force=force),
            dry_run=dry_run,
        )

    def resync(self, contact_ids: Sequence[str]) -> RunReport:
        """Re-read these contacts (Ids validated by the caller) and resend them."""
        ids = list(contact_ids)
        return self._run("resync", lambda ctx: frame.refresh(ctx, ids, force=True))

    def refresh(self, contact_ids: Sequence[str], *, push: bool = True) -> RunReport:
        """Change hints (the stream): re-read these contacts (Ids validated by the caller) and
        record them exactly as the pull does, no forced resend. ``push=False`` (service mode)
        leaves the sending to the push tasks."""
        ids = list(contact_ids)
        # Back at once for the next events (seconds matter for an opt-out): what another push
        # holds is its business, and the next poll's report says how it went.
        return self._run(
            "stream",
            lambda ctx: frame.refresh(ctx, ids, force=False),
            pushing=push,
            await_pushes=False,
        )

    def reconcile(self) -> RunReport:
        """The service's scheduled two-sided reconciliation, as `sync --full`: every record
        of the list compared with what the table wants, every in-scope contact re-read (a
        contact may enter SOQL_WHERE through a related record without a modstamp of its own),
        unseen ones confirmed gone, and every difference sent."""
        return self._run(
            "reconcile", lambda ctx: frame.cycle(ctx, full=True, dry_run=False, force=False)
        )

    def pull(self, *, full: bool = False) -> RunReport:
        """Service mode: read the window into the sync table and move the cursor; push tasks
        send the rows (the table is the queue of record)."""
        return self._run(
            "full" if full else "pull",
            lambda ctx: frame.cycle(ctx, full=full, dry_run=False, force=False),
            pushing=False,
        )

    def push(self, *, deadline: float | None = None) -> RunReport:
        """Service mode: send what is due, claiming rows so workers never send one twice.

        Stops after the batch that passes ``deadline`` (time.monotonic()). No list scan for
        uncertain creates here: those run in the pull, under the pull lock. Records no run
        when nothing is due.
        """
        targets = [self.store.target(d.name, d.target) for d in self.destinations]
        if not any(t.count_due() for t in targets) and not any(t.orphans(1) for t in targets):
            return RunReport(None, "push")

        def work(ctx: RunContext) -> None:
            ctx.store.release_dead_claims()
            frame.push_all(ctx, final=True, deadline=deadline, scan_uncertain=False)

        return self._run("push", work, needs_source=False)

    def due(self) -> int:
        return sum(self.store.target(d.name, d.target).count_due() for d in self.destinations)

    def close(self) -> None:
        for dest in self.destinations:
            dest.close()
        self.source.close()

    # -- one run -----------------------------------------------------------------------------
    def _run(
        self,
        kind: str,
        work: frame.Work,
        *,
        dry_run: bool = False,
        needs_source: bool = True,
        pushing: bool = True,
        await_pushes: bool = True,
    ) -> RunReport:
        run_id = None if dry_run else self.store.start_run(kind)
        ctx = RunContext(
            report=RunReport(run_id, kind),
            source=self.source,
            destinations=self.destinations,
            store=self.store,
            options=self.options,
            clock=self.clock,
            rng=self.rng,
            observer=self.observer,
            view=self._view,
            mapping_watch=self.mapping_watch,
            targets=self.targets,
            pushing=pushing,
        )
        self.failed = ctx.failed
        try:
            return frame.run(ctx, work, needs_source=needs_source, await_pushes=await_pushes)
        finally:
            self.remapped = ctx.remapped
