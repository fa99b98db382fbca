"""Pure diff: given what the table holds and what the contact now implies, what must change.

Kept free of I/O so that the plan (dry run) and the real sync share one decision, and so that
it can be tested exhaustively.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    SYNCED = "synced"
    PENDING = "pending"
    RETRYING = "retrying"
    REJECTED = "rejected"
    # Refused because another record holds its phone number or external id: retried when a
    # record of that list changes or goes (the holder may have), and on a slow backoff.
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    REMOVED = "removed"
    # Found in the dialer by a list scan, not yet matched to a contact: never pushed until the
    # pull (or a fetch by Id) says whether it stays or goes.
    UNVERIFIED = "unverified"


ACTIVE = (Status.PENDING, Status.RETRYING)


class Verdict(StrEnum):
    """What the pull decided for one contact at one destination."""

    CREATE = "create"  # must be created in the dialer
    UPDATE = "update"  # the dialer holds an older payload
    DELETE = "delete"  # the dialer holds it but must not
    UNCHANGED = "unchanged"  # nothing to send
    SKIP = "skip"  # must not be called, and the dialer does not hold it
    WAITING = "waiting"  # already queued with this payload; keep its backoff


@dataclass(frozen=True)
class Desired:
    """What one contact implies for one destination."""

    external_id: str
    modstamp: datetime | None  # None when known from getDeleted / a reconciliation only
    present: bool
    payload: str | None = None  # canonical JSON, when present
    payload_hash: str | None = None
    reason_code: str | None = None  # when absent
    reason_message: str | None = None
    force: bool = False  # resync: forget what the dialer is thought to hold
    # The mapping changed (dialsync.remap): render again even a contact seen already, and
    # compare with what the dialer holds.
    remap: bool = False
    # Known gone without a stamp, when the source's delete log dates it (getDeleted's
    # deletedDate): the evidence's stamp of the decision. Not compared, not stored in the row.
    gone_at: datetime | None = None


@dataclass(frozen=True)
class RowState:
    """The columns of a sync row that the decision reads."""

    id: int
    external_id: str
    record_id: str | None
    status: str
    desired: str
    payload_hash: str | None
    sent_hash: str | None
    source_modstamp: datetime | None
    inflight: str | None


def decide(row: RowState | None, want: Desired) -> Verdict:
    """The single rule of the sync table; see tests/unit/test_decide.py."""
    if row is None:
        return Verdict.CREATE if want.present else Verdict.SKIP
    if (
        want.remap
        and row.status == Status.REJECTED
        and row.source_modstamp == want.modstamp
        and row.payload_hash == want.payload_hash
    ):
        return Verdict.UNCHANGED  # refused as it is, and the new mapping renders it alike
    if (
        not want.force
        and not want.remap
        and want.modstamp is not None
        and row.source_modstamp == want.modstamp
        and _same_desire(row, want)
    ):
        # Seen already (the lookback re-reads a window): nothing new to decide. A rejected
        # record is retried only when its contact changes or on resync. SystemModstamp has
        # one-second precision, so an equal stamp alone does not mean "seen": two edits in one
        # second share it, and the content tells them apart.
        return Verdict.UNCHANGED if row.status not in ACTIVE else Verdict.WAITING
    maybe_in_dialer = row.record_id is not None or row.inflight == "create"
    if not want.present:
        return Verdict.DELETE if maybe_in_dialer else Verdict.SKIP
    if row.record_id is None:
        if (
            row.status in ACTIVE
            and row.desired == "present"
            and row.payload_hash == want.payload_hash
        ):
            return Verdict.WAITING
        return Verdict.CREATE
    if not want.force and row.sent_hash == want.payload_hash:
        return Verdict.UNCHANGED
    if (
        not want.force
        and row.status in ACTIVE
        and row.desired == "present"
        and row.payload_hash == want.payload_hash
    ):
        return Verdict.WAITING
    return Verdict.UPDATE


def _same_desire(row: RowState, want: Desired) -> bool:
    if want.present:
        return row.desired == "present" and row.payload_hash == want.payload_hash
    return row.desired == "absent"
