"""``Database``: the engine, a session factory and migrations, owned by ``Services``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from portway.store import migrate
from portway.store.engine import create_engine

logger = logging.getLogger(__name__)


class Database:
    """One pooled engine per process. ``start()`` migrates to head; ``close()`` disposes."""

    def __init__(
        self, database_url: str, *, migrate_on_start: bool = True, shared: bool = False
    ) -> None:
        self.url = database_url
        # Other processes of this machine use the file too (`portway serve --workers N`).
        self._shared = shared
        self.engine: AsyncEngine = create_engine(database_url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._migrate_on_start = migrate_on_start
        # SQLite has one writer at a time; writers of one process queue here instead of
        # spinning in SQLite's busy handler (which sleeps in growing steps).
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: for the few statements that differ per backend."""
        return self.engine.dialect.name

    @property
    def single_process(self) -> bool:
        """Whether this process alone uses the database (a SQLite file not shared by
        workers): then whatever is left in progress at start-up belongs to no live process."""
        return self.dialect == "sqlite" and not self._shared

    async def start(self) -> None:
        if self._migrate_on_start:
            await migrate.upgrade(self.engine)
            logger.info("database schema at revision %s", migrate.head_revision())

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success and rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """Like ``session`` for read-modify-write transactions: on SQLite (where a read does
        not open the transaction) they are serialised per process, as ``write`` is."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a transaction: the lean path for hot statements."""
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """Like ``connect`` for transactions that write (serialised per process on SQLite)."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self.engine.begin() as connection:
            yield connection
