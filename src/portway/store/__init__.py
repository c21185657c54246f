"""Persistent storage: one async SQLAlchemy engine, declarative tables and Alembic migrations.

Contract: ``Database`` (owned by ``Services``) opens the engine for ``settings.database_url``
and brings the schema to the newest migration on ``start()``; repositories take the
``Database`` and are the only code that issues SQL. See ``store/README.md`` for how a
module adds its tables and a migration.
"""

from portway.store.base import Base
from portway.store.database import Database

__all__ = ["Base", "Database"]
