"""What the store's unit tests share: a settable clock and small row builders."""

from __future__ import annotations

from datetime import UTC, datetime

from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Desired
from dialsync.store.protocol import WorkRow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    """The store's clock: stands still at ``now`` until a test moves it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def want(external_id: str, payload: str = '{"a": 1}') -> Desired:
    """A contact that must be in the list with this payload."""
    return Desired(external_id, T0, True, payload, f"h-{payload}")


def sent(row: WorkRow) -> transitions.Sent:
    """What a claimed row held when it was sent."""
    return transitions.Sent(row.id, row.desired, row.payload_hash, row.attempts)
