"""The SQLite backend: entries survive restarts; processes on one host may share the file.

Every statement runs on one dedicated thread that owns the connection, so the event
loop never waits on disk. WAL mode lets readers proceed while a writer commits. The
table lives in its own file by default and can share the main database file (its
name is prefixed, so it never collides with the store's tables).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from portway.cache.backends.base import BackendUsage
from portway.cache.keys import EntryKey

T = TypeVar("T")
TABLE = "portway_cache_entries"
# Expired rows are swept every this many writes, so the table stays bounded by the TTLs.
SWEEP_EVERY_WRITES = 256

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    key TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    model TEXT NOT NULL,
    value BLOB NOT NULL,
    drop_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_drop_at ON {TABLE} (drop_at);
CREATE INDEX IF NOT EXISTS {TABLE}_scope ON {TABLE} (namespace, model);
"""


def sqlite_file(location: str) -> Path:
    """A plain path, or a ``sqlite:///path`` URL like ``database_url``."""
    prefix = "sqlite:///"
    return Path(location[len(prefix) :] if location.startswith(prefix) else location)


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, location: str) -> None:
        self.path = sqlite_file(location)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portway-cache-db")
        self._connection: sqlite3.Connection | None = None
        self._writes = 0

    async def _run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._connection is not None, "SQLiteBackend used before start()"
            return function(self._connection)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=5000")
        connection.executescript(_SCHEMA)
        self._connection = connection

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    async def close(self) -> None:
        if self._connection is not None:
            await self._run(lambda connection: connection.close())
            self._connection = None
        self._executor.shutdown(wait=True)

    async def get(self, key: EntryKey) -> bytes | None:
        text = key.text

        def read(connection: sqlite3.Connection) -> bytes | None:
            row = connection.execute(
                f"SELECT value FROM {TABLE} WHERE key = ? AND drop_at > ?", (text, time.time())
            ).fetchone()
            return bytes(row[0]) if row else None

        return await self._run(read)

    async def set(self, key: EntryKey, value: bytes, keep_for: float) -> None:
        self._writes += 1
        sweep = self._writes % SWEEP_EVERY_WRITES == 0
        row = (key.text, key.namespace, key.model, value)

        def write(connection: sqlite3.Connection) -> None:
            now = time.time()
            connection.execute(
                f"INSERT OR REPLACE INTO {TABLE} (key, namespace, model, value, drop_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (*row, now + keep_for),
            )
            if sweep:
                connection.execute(f"DELETE FROM {TABLE} WHERE drop_at <= ?", (now,))

        await self._run(write)

    async def purge(self, namespace: str | None, model: str | None) -> int:
        def delete(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                f"DELETE FROM {TABLE} WHERE (?1 IS NULL OR namespace = ?1) "
                "AND (?2 IS NULL OR model = ?2)",
                (namespace, model),
            )
            return cursor.rowcount

        return await self._run(delete)

    async def usage(self) -> BackendUsage:
        def count(connection: sqlite3.Connection) -> BackendUsage:
            entries, size = connection.execute(
                f"SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) "
                f"FROM {TABLE} WHERE drop_at > ?",
                (time.time(),),
            ).fetchone()
            return BackendUsage(entries=int(entries), bytes=int(size))

        return await self._run(count)
