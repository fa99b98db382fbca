"""The opt-out report: each contact that became not callable, when Salesforce stamped it, and
per destination list when the dialer confirmed its removal, or how long it has been pending.

Read from the history (store/history.py) and, for what is still pending, from the sync table
itself through ``optouts.pending``, as the opt_out_pending alert reads it (the same age, from
the same stamp): a pending opt-out is listed even when its history was pruned or predates it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from dialsync.store.database import Database
from dialsync.store.optouts import REMOVED, H, evidence_query, pending, walk

LATENCY_WINDOW = timedelta(days=30)  # what `status` summarizes


@dataclass(frozen=True)
class Leg:
    """One destination list of an opt-out: removed (when), or still pending (for how long)."""

    destination: str
    list_id: str
    removed_at: datetime | None = None
    latency_seconds: float | None = None
    pending_seconds: float | None = None
    last_error: str | None = None  # pending: the dialer's code when its last answer failed

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"destination": self.destination, "list_id": self.list_id}
        if self.removed_at is not None:
            out["removed_at"] = self.removed_at.isoformat()
            out["latency_seconds"] = self.latency_seconds
        elif self.pending_seconds is not None:
            out["pending_seconds"] = self.pending_seconds
            out["last_error"] = self.last_error
        else:  # neither: gone from the list by a path that left no removal event
            out["removed_at"] = None
        return out


@dataclass
class Entry:
    contact_id: str
    reason: str  # why it became not callable (never a dialer's error: see Leg.last_error)
    # The Salesforce SystemModstamp of the change that made it not callable (a deletion known
    # only from getDeleted: its deletedDate; from a reconciliation: the time it was learned).
    opted_out_at: datetime
    destinations: list[Leg] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return any(leg.pending_seconds is not None for leg in self.destinations)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "reason": self.reason,
            "opted_out_at": self.opted_out_at.isoformat(),
            "pending": self.pending,
            "destinations": [leg.as_dict() for leg in self.destinations],
        }


def opt_outs(store: Database, since: datetime, now: datetime) -> list[Entry]:
    """Opt-outs decided or removed since ``since``, and every opt-out still pending (whenever
    it began), oldest first. An opt-out decided before ``since`` and confirmed removed after
    it is listed: the window holds its removal."""
    in_window = (
        select(H.contact_id)
        .where(H.at >= since, or_(and_(H.event == "decided", H.outcome == "remove"), REMOVED))
        .distinct()
    )
    with store.read() as conn:
        waiting = {p.key: p for p in pending(conn)}
        found = list(walk(conn.execute(evidence_query(H.contact_id.in_(in_window)))))
    legs: dict[tuple[str, datetime], Entry] = {}

    def add(contact: str, reason: str, stamp: datetime, leg: Leg) -> None:
        entry = legs.setdefault((contact, stamp), Entry(contact, reason, stamp))
        entry.destinations.append(leg)

    for opt in found:
        where = (opt.contact_id, opt.destination, opt.list_id)
        if opt.removed_at is not None:
            if opt.removed_at >= since:
                latency = max(0.0, (opt.removed_at - opt.opted_out_at).total_seconds())
                leg = Leg(opt.destination, opt.list_id, opt.removed_at, latency)
                add(opt.contact_id, opt.reason, opt.opted_out_at, leg)
        elif where not in waiting and opt.decided_at >= since:
            add(opt.contact_id, opt.reason, opt.opted_out_at, Leg(*where[1:]))
    for p in waiting.values():
        if p.routed:  # a contact routed to another list is not an opt-out
            continue
        leg = Leg(
            p.destination,
            p.list_id,
            pending_seconds=_age(now, p.since),
            last_error=p.last_error,
        )
        add(p.contact_id, p.reason or "unknown", p.since, leg)
    entries = sorted(legs.values(), key=lambda e: (e.opted_out_at, e.contact_id))
    for entry in entries:
        entry.destinations.sort(key=lambda leg: (leg.destination, leg.list_id))
    return entries


def _age(now: datetime, since: datetime) -> float:
    return round(max(0.0, (now - since).total_seconds()), 3)


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value at or above ``q`` of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency_summary(
    store: Database, now: datetime, window: timedelta = LATENCY_WINDOW
) -> dict[str, dict[str, Any]]:
    """Per destination list ("name:list"): opt-outs removed in the window and the p50, p95
    and max of their latency (seconds from the Salesforce stamp), and those still pending."""
    out: dict[str, dict[str, Any]] = {}
    by_list: dict[str, list[float]] = {}
    pending: dict[str, list[float]] = {}
    for entry in opt_outs(store, now - window, now):
        for leg in entry.destinations:
            name = f"{leg.destination}:{leg.list_id}"
            if leg.latency_seconds is not None:
                by_list.setdefault(name, []).append(leg.latency_seconds)
            elif leg.pending_seconds is not None:
                pending.setdefault(name, []).append(leg.pending_seconds)
    for name in sorted(set(by_list) | set(pending)):
        values = by_list.get(name, [])
        waiting = pending.get(name, [])
        out[name] = {
            "removed": len(values),
            "p50_seconds": quantile(values, 0.5) if values else None,
            "p95_seconds": quantile(values, 0.95) if values else None,
            "max_seconds": max(values) if values else None,
            "pending": len(waiting),
            "oldest_pending_seconds": max(waiting) if waiting else None,
        }
    return out


def csv_rows(entries: Iterable[Entry]) -> Iterator[list[str]]:
    """One line per opt-out and destination list."""
    yield [
        "contact_id",
        "reason",
        "opted_out_at",
        "destination",
        "list_id",
        "removed_at",
        "latency_seconds",
        "pending_seconds",
        "last_error",
    ]
    for e in entries:
        for leg in e.destinations:
            yield [
                e.contact_id,
                e.reason,
                e.opted_out_at.isoformat(),
                leg.destination,
                leg.list_id,
                leg.removed_at.isoformat() if leg.removed_at else "",
                "" if leg.latency_seconds is None else f"{leg.latency_seconds:g}",
                "" if leg.pending_seconds is None else f"{leg.pending_seconds:g}",
                leg.last_error or "",
            ]
