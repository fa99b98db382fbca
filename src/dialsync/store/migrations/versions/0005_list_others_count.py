"""list_state.others_count: records of other providers in the list at its last scan

The list's records_count includes records that are not ours (a CSV upload, another
integration); without knowing how many, records removed by hand went unnoticed.

Revision ID: 0005_others_count
Revises: 0004_removals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_others_count"
down_revision = "0004_removals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("list_state") as batch:
        batch.add_column(sa.Column("others_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("list_state") as batch:
        batch.drop_column("others_count")
