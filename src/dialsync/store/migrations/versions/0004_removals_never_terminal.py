"""removals are never terminal: failed deletes left as rejected are retried

Earlier versions marked a delete the dialer refused as ``rejected`` and never tried it again,
leaving a contact that must not be called in the list. Such rows become ``retrying``, due now.

Revision ID: 0004_removals
Revises: 0003_fingerprints
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_removals"
down_revision = "0003_fingerprints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    records = sa.table(
        "sync_records",
        sa.column("status", sa.String),
        sa.column("desired", sa.String),
        sa.column("record_id", sa.String),
        sa.column("next_attempt_at", sa.DateTime),
    )
    op.execute(
        records.update()
        .where(
            records.c.status == "rejected",
            records.c.desired == "absent",
            records.c.record_id.is_not(None),
        )
        .values(status="retrying", next_attempt_at=None)
    )


def downgrade() -> None:
    # Nothing to undo: a retrying removal is valid for the older code too.
    pass
