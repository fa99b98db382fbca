"""target fingerprints: what shaped each target's payloads, to notice a mapping change

Revision ID: 0003_fingerprints
Revises: 0002_run_error_kind
Create Date: 2026-12-04 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_fingerprints"
down_revision = "0002_run_error_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "target_fingerprints",
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("destination", "list_id"),
    )


def downgrade() -> None:
    op.drop_table("target_fingerprints")
