"""Read and write the per-target fingerprints (see ``dialsync.mapping.fingerprint``).

Kept apart from the rows: a fingerprint is written once per mapping change, not per row.
Reached through ``TargetStore.fingerprint`` and ``save_fingerprint``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from dialsync.store.database import Database
from dialsync.store.protocol import Fingerprint
from dialsync.store.rows import ListKey, replace_list_row
from dialsync.store.tables import target_fingerprints

F = target_fingerprints.c


def load(db: Database, key: ListKey) -> Fingerprint | None:
    with db.read() as conn:
        row = conn.execute(
            select(F.fingerprint, F.inputs).where(*key.of(target_fingerprints))
        ).first()
    if row is None:
        return None
    inputs = json.loads(row.inputs)
    return Fingerprint(row.fingerprint, inputs if isinstance(inputs, dict) else {})


def save(db: Database, key: ListKey, fingerprint: str, inputs: dict[str, Any]) -> None:
    # The store's write transaction: its SQLite writer lock, and a lost database is transient.
    with db.tx() as conn:
        replace_list_row(
            conn,
            target_fingerprints,
            key,
            fingerprint=fingerprint,
            inputs=json.dumps(inputs, sort_keys=True),
            recorded_at=db.clock(),
        )
