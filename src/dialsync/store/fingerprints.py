"""Read and write the per-target fingerprints (see ``dialsync.mapping.fingerprint``).

Kept apart from ``SyncStore``: a fingerprint is written once per mapping change, not per row.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from dialsync.store.protocol import RecordedFingerprint
from dialsync.store.tables import target_fingerprints

if TYPE_CHECKING:
    from dialsync.store.store import SyncStore

F = target_fingerprints.c


def load(store: SyncStore, destination: str, list_id: str) -> RecordedFingerprint | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            select(F.fingerprint, F.inputs).where(
                F.destination == destination, F.list_id == list_id
            )
        ).first()
    if row is None:
        return None
    inputs = json.loads(row.inputs)
    return RecordedFingerprint(row.fingerprint, inputs if isinstance(inputs, dict) else {})


def save(
    store: SyncStore, destination: str, list_id: str, fingerprint: str, inputs: dict[str, Any]
) -> None:
    # The store's write transaction: its SQLite writer lock, and a lost database is transient.
    with store._tx() as conn:
        conn.execute(
            delete(target_fingerprints).where(F.destination == destination, F.list_id == list_id)
        )
        conn.execute(
            insert(target_fingerprints).values(
                destination=destination,
                list_id=list_id,
                fingerprint=fingerprint,
                inputs=json.dumps(inputs, sort_keys=True),
                recorded_at=store.clock(),
            )
        )
