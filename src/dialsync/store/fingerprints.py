"""Read and write the per-target fingerprints (see ``dialsync.mapping.fingerprint``).

Kept apart from the rows: a fingerprint is written once per mapping change, not per row.
Reached through ``TargetStore.fingerprint`` and ``save_fingerprint``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, select

from dialsync.store.database import Database
from dialsync.store.protocol import Fingerprint
from dialsync.store.rows import ListKey
from dialsync.store.tables import target_fingerprints

F = target_fingerprints.c


def load(db: Database, key: ListKey) -> Fingerprint | None:
    with db.read() as conn:
        row = conn.execute(
            select(F.fingerprint, F.inputs).where(
                F.destination == key.destination, F.list_id == key.list_id
            )
        ).first()
    if row is None:
        return None
    inputs = json.loads(row.inputs)
    return Fingerprint(row.fingerprint, inputs if isinstance(inputs, dict) else {})


def save(db: Database, key: ListKey, fingerprint: str, inputs: dict[str, Any]) -> None:
    # The store's write transaction: its SQLite writer lock, and a lost database is transient.
    with db.tx() as conn:
        conn.execute(
            delete(target_fingerprints).where(
                F.destination == key.destination, F.list_id == key.list_id
            )
        )
        conn.execute(
            insert(target_fingerprints).values(
                destination=key.destination,
                list_id=key.list_id,
                fingerprint=fingerprint,
                inputs=json.dumps(inputs, sort_keys=True),
                recorded_at=db.clock(),
            )
        )
