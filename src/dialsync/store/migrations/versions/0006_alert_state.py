"""alert state: each alert sent once when it fires and once when it clears

Revision ID: 0006_alert_state
Revises: 0005_others_count
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_alert_state"
down_revision = "0005_others_count"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_state",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("alert", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=100), nullable=True),
        sa.Column("firing", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("notified", sa.String(length=16), nullable=True),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("alert_state")
