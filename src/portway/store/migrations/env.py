"""Alembic environment: always driven programmatically with a live connection (see migrate.py)."""

from __future__ import annotations

from alembic import context

from portway.store import models  # noqa: F401  (registers every table on Base.metadata)
from portway.store.base import Base
from portway.store.migrate import include_name

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `portway db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
