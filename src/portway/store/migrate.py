"""Programmatic Alembic: bring a database to the newest schema, safely from several processes.

The migration scripts live in ``store/migrations`` inside the package, so an installed
Portway needs no ``alembic.ini``. Concurrent start-ups are serialised: PostgreSQL by an
advisory lock held for the migration's transaction, SQLite by a lock file beside the
database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every Portway process.
_PG_MIGRATION_LOCK = 0x706F7274776179


# Objects named ``fts_*`` are backend-specific full-text indexes (an FTS5 table and its
# shadow tables on SQLite, a GIN expression index on PostgreSQL) created by hand-written
# migration DDL; the models cannot declare them, so autogenerate must not see them.
UNMANAGED_PREFIX = "fts_"


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic ``include_name`` hook: skip the hand-managed ``fts_*`` objects."""
    return not (name or "").startswith(UNMANAGED_PREFIX)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply pending migrations (no-op when the schema is current)."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
            await connection.run_sync(_upgrade, revision)
        return
    database = engine.url.database
    lock = Path(f"{database}.migrate.lock") if database and database != ":memory:" else None
    with contextlib.ExitStack() as stack:
        if lock is not None:
            # flock blocks: take it off the event loop.
            await asyncio.to_thread(stack.enter_context, _file_lock(lock))
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
