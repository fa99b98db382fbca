"""Alert state in the state database: what each alert last was, and what the webhook was told.

A message is owed when ``firing`` and ``notified`` disagree (firing and never announced, or
announced and now clear). Whoever evaluates may send it: a conditional update (the claim)
lets exactly one process do so, so cron runs, `dialsync run` and Celery workers share one
memory and each alert is sent once when it starts and once when it clears.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from dialsync.alerts.conditions import COMPLETE, Finding
from dialsync.store.database import Database
from dialsync.store.tables import alert_state

A = alert_state.c
CLAIM_SECONDS = 120  # longer than one delivery with its in-process retries
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class Owed:
    """A message to send: the alert's state now and what it says."""

    key: str
    alert: str
    status: str  # firing | resolved
    destination: str | None
    since: datetime
    detail: dict[str, Any]


def record(store: Database, findings: Iterable[Finding], now: datetime) -> None:
    """Store what this evaluation found. A subject never seen firing needs no row."""
    with store.engine.connect() as conn:
        known = {r.key: r for r in conn.execute(select(A.key, A.alert, A.firing, A.detail))}
    findings = list(findings)
    seen = {f.key for f in findings}
    for key, old in known.items():
        if old.firing and key not in seen and old.alert in COMPLETE:
            text = f"dialsync: {key} no longer applies"
            findings.append(Finding(old.alert, key.partition(":")[2], False, text))
    updates: list[tuple[str, dict[str, Any]]] = []
    for f in findings:
        detail = {"text": f.text, "contact_ids": list(f.contact_ids), "values": dict(f.values)}
        row = known.get(f.key)
        if row is None:
            if f.firing:
                _insert(store, f, detail, now)
            continue
        flipped = bool(row.firing) != f.firing
        if not f.firing and not flipped:
            continue  # still clear: nothing to write
        changes: dict[str, Any] = {"updated_at": now}
        if flipped:
            changes.update(firing=int(f.firing), since=now, attempts=0, next_attempt_at=None)
        if not f.firing and row.detail:
            # "resolved" names the contacts the firing message named
            detail["contact_ids"] = json.loads(row.detail).get("contact_ids", [])
        changes["detail"] = json.dumps(detail)
        updates.append((f.key, changes))
    if updates:
        with store.engine.begin() as conn:
            for key, changes in updates:
                conn.execute(update(alert_state).where(A.key == key).values(**changes))


def _insert(store: Database, f: Finding, detail: dict[str, Any], now: datetime) -> None:
    values = {
        "key": f.key,
        "alert": f.alert,
        "destination": f.destination,
        "firing": 1,
        "since": now,
        "detail": json.dumps(detail),
        "attempts": 0,
        "updated_at": now,
    }
    try:
        with store.engine.begin() as conn:  # its own transaction: a race loses harmlessly
            conn.execute(insert(alert_state).values(**values))
    except IntegrityError:
        pass  # another process recorded it first


def owed(store: Database, now: datetime, min_interval: float) -> list[Owed]:
    """Messages due now: state and notification disagree, no retry pending, the alert's last
    message older than ``min_interval`` and no other process holding the claim."""
    query = select(alert_state).where(
        or_(
            and_(A.firing == 1, or_(A.notified.is_(None), A.notified != "firing")),
            and_(A.firing == 0, A.notified == "firing"),
        ),
        or_(A.next_attempt_at.is_(None), A.next_attempt_at <= now),
        or_(A.notified_at.is_(None), A.notified_at <= now - timedelta(seconds=min_interval)),
        or_(A.claimed_until.is_(None), A.claimed_until < now),
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(A.key)).all()
    return [
        Owed(
            r.key,
            r.alert,
            "firing" if r.firing else "resolved",
            r.destination,
            r.since,
            json.loads(r.detail or "{}"),
        )
        for r in rows
    ]


def claim(store: Database, item: Owed, now: datetime) -> bool:
    """Take the message for this process; False when another took it or the state moved."""
    with store.engine.begin() as conn:
        result = conn.execute(
            update(alert_state)
            .where(
                A.key == item.key,
                A.firing == int(item.status == "firing"),
                or_(A.claimed_until.is_(None), A.claimed_until < now),
            )
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        )
        return result.rowcount == 1


def delivered(store: Database, item: Owed, now: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(alert_state)
            .where(A.key == item.key)
            .values(
                notified=item.status,
                notified_at=now,
                attempts=0,
                next_attempt_at=None,
                claimed_until=None,
            )
        )


def failed(store: Database, item: Owed, now: datetime) -> None:
    """The webhook did not take it: a later evaluation tries again, backing off."""
    with store.engine.begin() as conn:
        attempts = conn.execute(select(A.attempts).where(A.key == item.key)).scalar() or 0
        delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(attempts, 16))
        conn.execute(
            update(alert_state)
            .where(A.key == item.key)
            .values(
                attempts=attempts + 1,
                next_attempt_at=now + timedelta(seconds=delay),
                claimed_until=None,
            )
        )


def firing_states(store: Database) -> dict[tuple[str, str], bool]:
    """(alert, key) -> firing, for the metrics."""
    with store.engine.connect() as conn:
        return {
            (r.alert, r.key): bool(r.firing) for r in conn.execute(select(A.alert, A.key, A.firing))
        }
