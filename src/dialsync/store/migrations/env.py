"""Alembic environment: the URL and connection come from dialsync, never from alembic.ini."""

from __future__ import annotations

from alembic import context

from dialsync.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # pragma: no cover - dialsync always passes a connection
    raise RuntimeError("run migrations through `dialsync db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
