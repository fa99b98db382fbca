"""runs.error_kind: whether a failed run needs the operator (a setting or a credential)

`dialsync health` (the container healthchecks) reads it: a pull that failed because a setting
or a credential is wrong makes the service unhealthy; a transient failure does not.

Revision ID: 0002_run_error_kind
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_run_error_kind"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("error_kind", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("error_kind")
