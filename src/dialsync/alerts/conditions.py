"""The alert conditions, each read from the state database: pure reads, no writes, no I/O
beyond the database, so every process (cron `sync`, `run`, a Celery task) evaluates the same.

A condition yields one ``Finding`` per subject (the run stream, a destination, a list), firing
or not: a subject that stops firing must be seen not firing for its alert to clear. One
evaluation reads over one connection, in one transaction (a consistent snapshot on
PostgreSQL too), however many conditions it has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from dialsync.destinations.base import TargetInfo
from dialsync.logs import redact
from dialsync.settings import Settings
from dialsync.store.database import Database
from dialsync.store.optouts import Pending, pending
from dialsync.store.protocol import RUN_COUNTERS
from dialsync.store.tables import runs, sync_records

R = sync_records.c
ALERTS = (
    "runs_failing",
    "destination_down",
    "rejected_records",
    "opt_out_pending",
    "list_capacity",
    "no_recent_pull",
)
# Alerts whose every subject each evaluation sees: a firing row it no longer reports (a
# destination taken out of DIALSYNC_DESTINATIONS) is cleared. list_capacity may not see a
# list's count in every process, so its silence changes nothing.
COMPLETE = frozenset(ALERTS) - {"list_capacity"}
# Talkdesk: "a record list can have up to 250,000 records" (reference/talkdesk.md).
TALKDESK_LIST_CAPACITY = 250_000
CAPACITY_ALERT_FRACTION = 0.8
CONTACT_IDS_SHOWN = 100  # a webhook body stays small; the count says how many there are
_FINISHED = ("ok", "partial", "failed")
_PULLS = ("sync", "full", "pull", "resync", "reconcile")  # runs that read Salesforce
_OUTCOMES = tuple(c for c in RUN_COUNTERS if c != "queried")


@dataclass(frozen=True)
class Finding:
    alert: str
    subject: str  # "" for the whole sync, else a destination or "destination:list"
    firing: bool
    text: str = ""
    destination: str | None = None
    contact_ids: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.alert}:{self.subject}" if self.subject else self.alert


def evaluate(
    store: Database,
    settings: Settings,
    now: datetime,
    targets: Mapping[str, TargetInfo] | None = None,
) -> list[Finding]:
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # every query sees the same snapshot
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        recent = _recent_runs(conn, max(settings.alerts.failed_runs, 1))
        return [
            runs_failing(recent, settings.alerts.failed_runs),
            *destination_down(recent, settings.alerts.failed_runs, settings.destination_names),
            rejected_records(conn, settings.alerts.rejected_percent),
            *opt_out_pending(conn, settings.compliance.opt_out_seconds, now),
            *list_capacity(conn, targets or {}),
            # with the stream on, the poll is the safety net at its own, longer interval
            no_recent_pull(
                conn,
                settings.stream.poll_interval_seconds
                if settings.stream.enabled
                else settings.sync.interval_seconds,
                now,
            ),
        ]


def _recent_runs(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The newest finished runs, newest first (running and interrupted ones say nothing)."""
    query = select(runs).where(runs.c.status.in_(_FINISHED)).order_by(runs.c.id.desc())
    return [dict(r._mapping) for r in conn.execute(query.limit(limit))]


def runs_failing(recent: list[dict[str, Any]], threshold: int) -> Finding:
    """``threshold`` runs in a row failed (a credential refused, Salesforce down, ...)."""
    streak = recent[:threshold]
    firing = len(streak) >= threshold and all(r["status"] == "failed" for r in streak)
    last_error = redact(str(recent[0]["error"] or ""))[:300] if recent else ""
    text = (
        f"dialsync: the last {threshold} runs failed; last error: {last_error}"
        if firing
        else "dialsync: runs succeed again"
    )
    return Finding("runs_failing", "", firing, text, values={"threshold": threshold})


def _names_destination(error: str | None, name: str) -> bool:
    # Errors read "system: message"; a partial run joins one per failed destination with "; ".
    return bool(error) and re.search(rf"(?:^|; ){re.escape(name)}:", error or "") is not None


def destination_down(
    recent: list[dict[str, Any]], threshold: int, names: Iterable[str]
) -> list[Finding]:
    """A destination failed each of the last ``threshold`` runs (failed, or partial naming it)."""
    out = []
    streak = recent[:threshold]
    for name in names:
        firing = len(streak) >= threshold and all(
            r["status"] in ("failed", "partial") and _names_destination(r["error"], name)
            for r in streak
        )
        reason = redact(str(streak[0]["error"]))[:300] if firing else ""
        text = (
            f"dialsync: {name} failed the last {threshold} runs: {reason}"
            if firing
            else f"dialsync: {name} answers again"
        )
        out.append(Finding("destination_down", name, firing, text, destination=name))
    return out


def rejected_records(conn: Connection, percent: float) -> Finding:
    """The newest run that handled records rejected more than ``percent`` of them."""
    query = (
        select(runs)
        .where(runs.c.status.in_(("ok", "partial")))
        .where(sum(runs.c[c] for c in _OUTCOMES) > 0)  # type: ignore[arg-type]
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    if row is None:
        return Finding("rejected_records", "", False)
    run = dict(row._mapping)
    handled = sum(int(run[c] or 0) for c in _OUTCOMES)
    share = 100.0 * int(run["rejected"] or 0) / handled
    firing = share > percent
    ids: tuple[str, ...] = ()
    if firing:
        ids = tuple(
            conn.execute(
                select(R.external_id)
                .where(R.status == "rejected")
                .order_by(R.updated_at.desc())
                .limit(CONTACT_IDS_SHOWN)
            ).scalars()
        )
    text = (
        f"dialsync: run {run['id']} rejected {run['rejected']} of {handled} records"
        f" ({share:.1f}% > {percent:g}%); see `dialsync errors`"
        if firing
        else f"dialsync: rejected records back under {percent:g}% (run {run['id']})"
    )
    values = {"run_id": run["id"], "rejected": run["rejected"], "handled": handled}
    return Finding("rejected_records", "", firing, text, contact_ids=ids, values=values)


def pending_opt_outs(store: Database) -> dict[tuple[str, str], tuple[int, datetime]]:
    """Every opt-out still possibly in a dialer, by (destination, list): count and oldest
    (its age counted as the report counts it: ``optouts.pending``)."""
    out: dict[tuple[str, str], tuple[int, datetime]] = {}
    with store.engine.connect() as conn:
        found = pending(conn, explain=False)
    for p in found:
        where = (p.destination, p.list_id)
        n, oldest = out.get(where, (0, p.since))
        out[where] = (n + 1, min(oldest, p.since))
    return out


def _aware(value: Any) -> datetime:
    # func.min() loses the column type on SQLite: the naive UTC text comes back as is.
    from dialsync.store.tables import UTCDateTime

    parsed = UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
    assert parsed is not None
    return parsed


def opt_out_pending(conn: Connection, threshold_seconds: int, now: datetime) -> list[Finding]:
    """Opt-outs pending longer than the threshold, per destination list; lists that had some
    pending before and have none now are reported clear. An opt-out's age counts from the
    Salesforce stamp of the change that opened it (``optouts.pending``): a later edit of the
    still opted-out contact must not make it look younger than it is."""
    cutoff = now - timedelta(seconds=threshold_seconds)
    late: dict[tuple[str, str], list[Pending]] = {}
    for p in pending(conn, explain=False):
        if p.since < cutoff:
            late.setdefault((p.destination, p.list_id), []).append(p)
    lists = conn.execute(
        select(R.destination, R.list_id).distinct().order_by(R.destination, R.list_id)
    ).all()
    out = []
    for dest, list_id in lists:
        subject = f"{dest}:{list_id}"
        found = sorted(late.get((dest, list_id), []), key=lambda p: (p.since, p.contact_id))
        if not found:
            text = f"dialsync: no opt-out pending past {threshold_seconds}s on {subject}"
            out.append(Finding("opt_out_pending", subject, False, text, destination=dest))
            continue
        ids = tuple(p.contact_id for p in found[:CONTACT_IDS_SHOWN])
        age = int((now - found[0].since).total_seconds())
        text = (
            f"dialsync: {len(found)} contact(s) opted out but still possibly in {subject}"
            f" for over {threshold_seconds}s (oldest {age}s)"
        )
        values = {"count": len(found), "oldest_seconds": age}
        out.append(Finding("opt_out_pending", subject, True, text, dest, ids, values=values))
    return out


def list_capacity(conn: Connection, targets: Mapping[str, TargetInfo]) -> list[Finding]:
    """A Talkdesk list past 80% of its capacity: the count the list reported when it was
    opened, or, when this process did not open it, the records we hold in it (which can only
    fire the alert: other records may be in the list too)."""
    ours: dict[str, int] = dict(
        conn.execute(
            select(R.list_id, func.count())
            .where(R.destination == "talkdesk", R.record_id.is_not(None))
            .group_by(R.list_id)
        ).all()
    )
    counts: dict[str, int] = {list_id: int(n) for list_id, n in ours.items()}
    for name, info in targets.items():
        system, _, list_id = name.partition(":")
        if system == "talkdesk" and info.records_count is not None:
            counts[list_id] = max(counts.get(list_id, 0), info.records_count)
    limit = int(TALKDESK_LIST_CAPACITY * CAPACITY_ALERT_FRACTION)
    reported = {n.partition(":")[2] for n, i in targets.items() if i.records_count is not None}
    out = []
    for list_id, count in sorted(counts.items()):
        firing = count > limit
        if not firing and list_id not in reported:
            continue  # our rows are a lower bound: they can say "full", never "not full"
        text = (
            f"dialsync: Talkdesk list {list_id} holds {count} records, past 80% of its "
            f"{TALKDESK_LIST_CAPACITY}"
            if firing
            else f"dialsync: Talkdesk list {list_id} back under 80% of its capacity"
        )
        values = {"records": count, "capacity": TALKDESK_LIST_CAPACITY}
        out.append(
            Finding("list_capacity", f"talkdesk:{list_id}", firing, text, "talkdesk", values=values)
        )
    return out


def no_recent_pull(conn: Connection, interval_seconds: int, now: datetime) -> Finding:
    """No successful pull for longer than 3 intervals: the schedule silently not running.
    Counted from the first run ever when none succeeded; silent before any run."""
    last_ok = conn.execute(
        select(func.max(runs.c.finished_at)).where(
            runs.c.kind.in_(_PULLS), runs.c.status.in_(("ok", "partial"))
        )
    ).scalar()
    first = None if last_ok else conn.execute(select(func.min(runs.c.started_at))).scalar()
    since = last_ok or first
    if since is None:
        return Finding("no_recent_pull", "", False)
    age = (now - _aware(since)).total_seconds()
    limit = 3 * interval_seconds
    firing = age > limit
    text = (
        f"dialsync: no successful pull for {int(age)}s (over 3 intervals of {interval_seconds}s)"
        if firing
        else "dialsync: pulls succeed again"
    )
    return Finding("no_recent_pull", "", firing, text, values={"seconds": int(age)})
