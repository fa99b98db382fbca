"""What every fault case ends with: the list compared with what the org implies.

``implied()`` maps every live contact of the sandbox org with the production mapper, straight
from the org's rows (not through the sync), so a record the sync lost, sent twice, left stale or
forgot to remove all show up. ``run_until_settled()`` drives in-process cycles, bounded in count.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dialsync.destinations.talkdesk import render_record
from dialsync.engine import SyncEngine
from dialsync.errors import DialsyncError
from dialsync.mapping import CONTACT_FIELDS, MappingConfig, map_contact
from dialsync.models import DialerRecord, SourceContact
from dialsync.rowstate.decide import Status
from dialsync.sandbox.harness import Sandboxes
from dialsync.store.store import SqlSyncStore, open_store
from tests.integration.helpers import run

SETTLED = frozenset({Status.SYNCED, Status.SKIPPED, Status.REJECTED, Status.REMOVED})


def implied(box: Sandboxes, rejected: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """External id -> the Talkdesk payload, for every live contact that belongs in the list.

    ``rejected`` names contacts the dialer refuses on purpose (a poison record): the org implies
    them, the dialer will never hold them.
    """
    sf = box.salesforce
    settings = box.settings()
    config = MappingConfig(
        instance_url=sf.url.rstrip("/"),
        default_region=settings.mapping.default_region,
        priority=settings.mapping.priority,
    )
    out: dict[str, dict[str, Any]] = {}
    for row in sf.live_contacts():
        fields = {
            name: sf._value(row, name)  # the org's own resolver for Account.Name
            for name in CONTACT_FIELDS
            if name in row or "." in name
        }
        contact = SourceContact(
            id=row["Id"], system_modstamp=row["SystemModstamp"], is_deleted=False, fields=fields
        )
        mapped = map_contact(contact, config)
        if isinstance(mapped, DialerRecord) and contact.id not in rejected:
            out[contact.id] = render_record(mapped)
    return out


@dataclass
class Measure:
    lost: int  # the org implies it, the list lacks it
    duplicated: int  # extra copies of one external id
    extra: int  # in the list, the org does not imply it
    stale: int  # in the list with other content than the org implies
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.stale)


def measure(box: Sandboxes, rejected: frozenset[str] = frozenset()) -> Measure:
    want = implied(box, rejected)
    ours = [
        r for r in box.talkdesk.records(box.list_id) if r.get("external_provider") == "salesforce"
    ]
    counts = Counter(r["external_id"] for r in ours)
    held = {r["external_id"]: r for r in ours}
    lost = sorted(set(want) - set(held))
    extra = sorted(set(held) - set(want))
    stale = sorted(
        k
        for k in set(want) & set(held)
        if any(held[k].get(name) != value for name, value in want[k].items())
    )
    dupes = sorted(k for k, n in counts.items() if n > 1)
    return Measure(
        lost=len(lost),
        duplicated=sum(counts[k] - 1 for k in dupes),
        extra=len(extra),
        stale=len(stale),
        examples={
            "lost": lost[:3],
            "duplicated": dupes[:3],
            "extra": extra[:3],
            "stale": stale[:3],
        },
    )


def unsettled(store: SqlSyncStore) -> int:
    """Rows still pending, retrying or unverified: work the sync has not finished."""
    counts = store.status_counts()
    return sum(n for (_d, _l, status), n in counts.items() if status not in SETTLED)


def settled(box: Sandboxes, db_url: str, rejected: frozenset[str] = frozenset()) -> bool:
    store = open_store(db_url)
    try:
        return unsettled(store) == 0 and measure(box, rejected).ok
    finally:
        store.engine.dispose()


def wait_for_due(db_url: str, cap: float = 6.0) -> None:
    """Sleep until the earliest retrying row is due (bounded by ``cap``)."""
    store = open_store(db_url)
    try:
        dues = [r["next_attempt_at"] for r in store.problem_rows() if r["next_attempt_at"]]
    finally:
        store.engine.dispose()
    if dues:
        first = min(d if d.tzinfo else d.replace(tzinfo=UTC) for d in dues)
        time.sleep(min(cap, max(0.0, (first - datetime.now(UTC)).total_seconds()) + 0.05))


def run_until_settled(
    box: Sandboxes,
    db_url: str,
    *,
    limit: int,
    rejected: frozenset[str] = frozenset(),
    prepare: Callable[[SyncEngine], None] | None = None,
    between: Callable[[int], None] | None = None,
    **kw: Any,
) -> tuple[int, list[str]]:
    """Run cycles until the list matches the org and no row is left to do.

    Returns (cycles run, errors of the cycles that failed). A failed cycle counts as a cycle.
    Fails after ``limit`` cycles: convergence must be bounded.
    """
    errors: list[str] = []
    for cycle in range(1, limit + 1):
        try:
            run(box, db_url, prepare=prepare, **kw)
        except DialsyncError as exc:
            errors.append(str(exc))
        if settled(box, db_url, rejected):
            return cycle, errors
        if between is not None:
            between(cycle)
        wait_for_due(db_url)
    final = measure(box, rejected)
    raise AssertionError(
        f"not converged after {limit} cycles: {final}; cycle errors: {errors[-5:]}"
    )
