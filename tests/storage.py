"""Storage fixtures (a pytest plugin loaded by tests/conftest.py): run a test on both backends.

- ``database_url``: parametrized over ``sqlite`` (a fresh file under tmp_path) and
  ``postgresql`` (a fresh database on 127.0.0.1:5432 created from the ``test`` database
  and dropped afterwards; skipped via ``service_unavailable`` when PostgreSQL is down).
- ``database``: a started ``Database`` (migrated to head) on that URL, closed afterwards.
- ``postgres_database()``: a context manager for tests that need their own PostgreSQL
  database outside the parametrization (e.g. several Portway processes sharing one).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from portway.store import Database

POSTGRES_HOST = os.environ.get("PORTWAY_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("PORTWAY_TEST_PG_PORT", "5432"))
POSTGRES_ADMIN_DSN = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"


def postgres_url(database: str) -> str:
    return f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


async def _admin_connection() -> asyncpg.Connection:
    from tests.conftest import service_unavailable

    try:
        # Absent, it refuses at once; present but busy (a dropped database's checkpoint on a
        # loaded CI machine), its handshake has been seen to take over 3 s.
        return await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=15)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_DSN}: {exc}")
        raise  # unreachable: service_unavailable skips or fails


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; yields its URL, drops it after."""
    name = "portway_test_" + secrets.token_hex(6)
    admin = await _admin_connection()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield postgres_url(name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'portway.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.start()
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only, for tests that exercise behaviour independent of the backend."""
    yield sqlite_url(tmp_path)
