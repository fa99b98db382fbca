"""`dialsync plan`: what the next sync would create, update, remove and skip, and why.

The plan runs the engine itself, unchanged, on a snapshot of the state database (a temporary
SQLite copy), with destinations that read the real lists but answer every write with success
instead of sending it. So the plan goes through exactly the sync's steps (the window and its
lookback, list scans and adoption, getDeleted, reconciliation, retries that are due, routing)
and its counts are the sync's counts as long as the dialer accepts every record. Salesforce
is read as a sync reads it; nothing is written to the dialer, the live database or the cursor.

The cost is the copy: a SQLite state database is copied page by page (100,000 rows in a
fraction of a second), a PostgreSQL one row by row (about 5 s per 100,000 rows).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from dialsync.engine import Observer, RunReport, SyncEngine
from dialsync.logs import mask_phone
from dialsync.plan_dry_run import DecisionRecorder, DryRunDestination
from dialsync.rowstate.decide import Verdict
from dialsync.settings import Settings
from dialsync.sources.salesforce import CURSOR
from dialsync.store.store import SqlSyncStore, open_store, utcnow
from dialsync.store.views import RowInfo, copy_state, rows_by_ids

EXAMPLES = 3
_CHUNK = 2000
CATEGORIES = ("create", "update", "delete", "skip")


@dataclass
class ListPlan:
    destination: str
    list_id: str
    name: str
    records_now: int
    records_after: int
    counts: dict[str, int]  # create, update, delete, skip, unchanged
    reasons: dict[str, dict[str, int]]
    examples: dict[str, list[dict[str, Any]]]
    scanned: bool = False
    orphans: int = 0


@dataclass
class Plan:
    counts: dict[str, int]  # what `sync --json` will report
    lists: list[ListPlan]
    window: str
    notes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    # "name:target" -> what changed, for the targets whose mapping changed (dialsync.remap)
    mapping_changed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts,
            "window": self.window,
            "lists": [vars(item) for item in self.lists],
            "notes": self.notes,
            "failed": self.failed,
            "mapping_changed": self.mapping_changed,
        }


def make_plan(
    settings: Settings,
    *,
    full: bool = False,
    examples: int = EXAMPLES,
    observe: Callable[[SyncEngine], Observer | None] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Plan:
    """``observe`` gives the plan's engine an observer (a progress bar); ``clock`` is for
    tests that move time."""
    from dialsync.wiring import build_engine, build_store

    with tempfile.TemporaryDirectory(prefix="dialsync-plan-") as tmp:
        url = make_url(settings.database_url)
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            # Nothing synced yet: plan from an empty state rather than create the real one.
            live = open_store(f"sqlite:///{Path(tmp) / 'empty.db'}")
        else:
            live = build_store(settings)
        base = open_store(f"sqlite:///{Path(tmp) / 'plan.db'}", clock=clock or utcnow)
        copy_state(live, base)
        built = build_engine(settings, base)
        dests = [DryRunDestination(d) for d in built.destinations]
        engine = SyncEngine(
            source=built.source, destinations=dests, store=base, options=built.options
        )
        if clock is not None:
            engine.clock = clock
        recorder = DecisionRecorder(observe(engine) if observe else None)
        engine.observer = recorder
        # The plan's own run is not news: the engine's INFO lines ("run 1 finished") would
        # read like a real sync. Warnings and errors still show; --debug shows everything.
        engine_log = logging.getLogger("dialsync.engine")
        level = engine_log.level
        if not engine_log.isEnabledFor(logging.DEBUG):
            engine_log.setLevel(logging.WARNING)
        try:
            report = engine.sync(full=full)
            changed = {k: change.reason for k, change in engine.remapped.items()}
            window = _window(live, engine.options.lookback, full, remapped=bool(changed))
            lists = [_list_plan(live, base, recorder, dest, examples) for dest in dests]
        finally:
            engine_log.setLevel(level)
            engine.close()
            base.engine.dispose()
            live.engine.dispose()
    notes = _remap_notes(changed, lists) + _notes(report, dests)
    return Plan(report.as_dict(), lists, window, notes, dict(report.failed), changed)


def _window(live: SqlSyncStore, lookback: timedelta, full: bool, *, remapped: bool = False) -> str:
    cursor = live.get_cursor(CURSOR)
    if full:
        return "every contact (--full)"
    if remapped:
        return "every contact (the mapping changed since the last sync: each is rendered again)"
    if cursor.modstamp is None:
        return "every contact (first sync)"
    since = (cursor.modstamp - lookback).isoformat()
    seconds = f"{lookback.total_seconds():g}"
    return f"contacts changed since {since} (the cursor minus the {seconds} s lookback)"


def _remap_notes(changed: dict[str, str], lists: Sequence[ListPlan]) -> list[str]:
    """One line per target whose mapping changed: what changed and what it costs."""
    notes = []
    for item in lists:
        reason = changed.get(f"{item.destination}:{item.list_id}")
        if reason is None:
            continue
        counts = item.counts
        also = [
            f"{counts[op]:,} {word}"
            for op, word in (("create", "created"), ("delete", "removed"))
            if counts.get(op)
        ]
        notes.append(
            f"the mapping changed: {counts.get('update', 0):,} records will be updated"
            + (f", {', '.join(also)}" if also else "")
            + f" in {item.destination} {item.list_id} ({reason})"
        )
    return notes


def _notes(report: RunReport, dests: Sequence[DryRunDestination]) -> list[str]:
    notes = []
    if report.reconciled:
        notes.append("every Salesforce Id is compared with the sync table (reconciliation)")
    for dest in dests:
        if dest.scanned:
            notes.append(f"{dest.name} list {dest.target} is read in full first, to adopt records")
        if dest.orphans:
            notes.append(f"{dest.orphans} duplicate records are removed from list {dest.target}")
        fill = dest.fill()
        if dest.held and fill is not None:
            notes.append(
                f"{dest.held:,} creates wait: {dest.name} list {dest.target} would hold {fill}, "
                "Talkdesk's limit (LIST_FULL; they go out once records are removed)"
            )
    return notes


def _list_plan(
    live: SqlSyncStore,
    base: SqlSyncStore,
    recorder: DecisionRecorder,
    dest: DryRunDestination,
    n: int,
) -> ListPlan:
    """What the plan's run did to one list: ``base`` is the copy of the state it ran on,
    ``recorder`` the decisions the engine reported while it ran."""
    decisions = recorder.decisions.get(f"{dest.name}:{dest.target}", [])
    verdicts = Counter(verdict for _, verdict, _, _ in decisions)
    reasons: dict[str, Counter[str]] = {c: Counter() for c in CATEGORIES}
    picks = {c: _Examples(n) for c in CATEGORIES}
    for external_id, verdict, code, message in decisions:
        if verdict is Verdict.SKIP:
            reason = code or "-"
            reasons["skip"][reason] += 1
            picks["skip"].add(reason, {"id": external_id, "reason": reason, "message": message})
    for op in ("create", "update", "delete"):
        for start in range(0, len(dest.sent[op]), _CHUNK):
            ids = dest.sent[op][start : start + _CHUNK]
            before = rows_by_ids(live, dest.name, dest.target, ids)
            after = rows_by_ids(base, dest.name, dest.target, ids)
            for external_id in ids:
                old, new = before.get(external_id), after.get(external_id)
                for reason, example in _explain(op, external_id, old, new):
                    reasons[op][reason] += 1
                    picks[op].add(reason, example)
    return ListPlan(
        destination=dest.name,
        list_id=dest.target,
        name=dest.info.name if dest.info else dest.target,
        records_now=live.target(dest.name, dest.target).count_in_dialer(),
        records_after=base.target(dest.name, dest.target).count_in_dialer(),
        counts={
            "create": len(dest.sent["create"]),
            "update": len(dest.sent["update"]),
            "delete": len(dest.sent["delete"]),
            "skip": verdicts[Verdict.SKIP],
            "unchanged": verdicts[Verdict.UNCHANGED] + verdicts[Verdict.WAITING],
        },
        reasons={c: dict(r.most_common()) for c, r in reasons.items()},
        examples={c: p.pick(reasons[c]) for c, p in picks.items()},
        scanned=dest.scanned,
        orphans=dest.orphans,
    )


def _explain(
    op: str,
    external_id: str,
    old: RowInfo | None,
    new: RowInfo | None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(reason, example) pairs for one record sent; an update gives one per changed field."""
    payload = new.payload if new and new.payload else {}
    example: dict[str, Any] = {"id": external_id, **_summary(payload)}
    if op == "create":
        reason = _create_reason(old)
        yield reason, {**example, "reason": reason}
    elif op == "delete":
        # The copy's row holds the reason the engine recorded for the removal.
        row = new if new is not None and new.reason_code else old
        reason = (row.reason_code if row else None) or "-"
        message = row.reason_message if row else None
        yield reason, {"id": external_id, "reason": reason, "message": message}
    else:
        before = old.payload if old else None
        if before is None:
            yield "adopted from the list", {**example, "reason": "adopted from the list"}
            return
        changed = sorted(k for k in set(before) | set(payload) if before.get(k) != payload.get(k))
        if not changed:
            yield "resend", {**example, "reason": "resend"}
        changes = {k: _masked_change(k, before.get(k), payload.get(k)) for k in changed}
        for key in changed:
            yield key, {**example, "reason": ", ".join(changed), "changes": changes}


def _create_reason(old: RowInfo | None) -> str:
    if old is None:
        return "new"
    if old.record_id is not None:
        return "removed from the list by hand"
    if old.reason_code == "routed_elsewhere":
        return "moved here from another list"
    if old.status in ("skipped", "removed"):
        return f"callable again (was {old.reason_code or old.status})"
    if old.status == "rejected":
        return f"changed since the dialer refused it ({old.reason_code or '-'})"
    if old.status in ("pending", "retrying"):
        return f"queued earlier{f' ({old.reason_code})' if old.reason_code else ''}"
    return "new"


def _summary(payload: dict[str, Any]) -> dict[str, Any]:
    """Name and phones of a rendered record, whichever destination's shape it has."""
    first = payload.get("first_name") or payload.get("firstName") or payload.get("FirstName")
    last = payload.get("last_name") or payload.get("lastName") or payload.get("LastName")
    phones = [
        p.get("phone_number")
        for p in payload.get("phone_numbers") or []
        if isinstance(p, dict) and p.get("phone_number")
    ]
    out: dict[str, Any] = {}
    if first or last:
        out["name"] = " ".join(_initial(x) for x in (first, last) if x)
    if phones:
        out["phones"] = [mask_phone(str(p)) for p in phones]
    return out


# A plan is pasted into tickets and chats: names and numbers are masked like the logs'
# (`dialsync preview --contact ID` shows one contact whole, on purpose).
_PERSONAL = re.compile(r"name|phone|email|path", re.IGNORECASE)


def _initial(value: object) -> str:
    return f"{str(value)[:1]}."


def _masked_change(key: str, before: Any, after: Any) -> list[Any]:
    if _PERSONAL.search(key):
        return ["***" if before is not None else None, "***" if after is not None else None]
    return [before, after]


class _Examples:
    """A few examples per category, as many different reasons as fit, the commonest first."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.by_reason: dict[str, list[dict[str, Any]]] = {}

    def add(self, reason: str, example: dict[str, Any]) -> None:
        kept = self.by_reason.setdefault(reason, [])
        if len(kept) < self.n:
            kept.append(example)

    def pick(self, counts: Counter[str]) -> list[dict[str, Any]]:
        order = [r for r, _ in counts.most_common() if r in self.by_reason]
        out: list[dict[str, Any]] = []
        for depth in range(self.n):
            for reason in order:
                kept = self.by_reason[reason]
                if depth < len(kept) and len(out) < self.n and kept[depth] not in out:
                    out.append(kept[depth])
        return out
