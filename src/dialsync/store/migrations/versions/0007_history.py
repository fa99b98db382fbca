"""history: one row per event of a contact at a destination list (compliance evidence)

Revision ID: 0007_history
Revises: 0006_alert_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_history"
down_revision = "0006_alert_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("stamp", sa.DateTime(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_history_contact", "history", ["contact_id", "at"])
    op.create_index("ix_history_at", "history", ["at"])


def downgrade() -> None:
    op.drop_index("ix_history_at", table_name="history")
    op.drop_index("ix_history_contact", table_name="history")
    op.drop_table("history")
