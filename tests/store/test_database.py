"""The store foundation on SQLite and PostgreSQL: URLs, WAL, migrations at start-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from portway.config import ConfigError
from portway.store import Base, Database
from portway.store.engine import async_url
from portway.store.migrate import current_revision, head_revision, include_name


def test_urls_map_to_async_drivers() -> None:
    assert async_url("sqlite:///./x/portway.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql://u@h:5432/db").drivername == "postgresql+asyncpg"
    assert async_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_urls_name_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="database_url"):
        async_url(url)


async def test_sqlite_creates_parent_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "portway.db"
    db = Database(f"sqlite:///{path}")
    await db.start()
    try:
        async with db.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert mode == "wal"
        assert path.exists()
    finally:
        await db.close()


async def test_start_migrates_to_head(database: Database) -> None:
    async with database.connect() as connection:
        revision = await connection.run_sync(current_revision)
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert revision == head_revision()
    assert {"virtual_keys", "budgets", "usage_records"} <= tables


async def test_migrations_match_the_models(database: Database) -> None:
    """A table or column added to a model without a migration fails here."""

    def diff(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"include_name": include_name})
        return compare_metadata(context, Base.metadata)

    async with database.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


async def test_concurrent_start_ups_migrate_once(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(db.start() for db in databases))
        async with databases[0].connect() as connection:
            assert await connection.run_sync(current_revision) == head_revision()
        await databases[1].start()  # already current: a no-op
    finally:
        for db in databases:
            await db.close()
