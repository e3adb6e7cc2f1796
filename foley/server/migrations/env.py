"""Alembic environment: run by :func:`foley.server.db.migrate` on a connection it passes in ``attributes``."""

from __future__ import annotations

from alembic import context

from foley.server.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
