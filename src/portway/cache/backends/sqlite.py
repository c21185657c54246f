"""The SQLite backend: entries survive restarts; processes on one host may share the file.

Every statement runs on one dedicated thread that owns the connection, so the event
loop never waits on disk. WAL mode lets readers proceed while a writer commits. The
table lives in its own file by default and can share the main database file (its
name is prefixed, so it never collides with the store's tables). The table holds at
most ``max_bytes`` (key and value lengths, as ``usage`` counts them): past it, the
oldest-written entries are evicted down to ``EVICT_TO`` of it. Each process keeps a
running total, recounted at start and at every sweep, so processes sharing the file
overshoot by at most what the others wrote since their last recount.
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
# Evicting down to a little under the bound, so the next writes do not evict again at once.
EVICT_TO = 0.9
_EVICT_BATCH = 256
_SIZE = "LENGTH(key) + LENGTH(value)"

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

    def __init__(self, location: str, max_bytes: int | None = None) -> None:
        self.path = sqlite_file(location)
        self.max_bytes = max_bytes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portway-cache-db")
        self._connection: sqlite3.Connection | None = None
        self._writes = 0
        self._bytes = 0  # the table's size as this process last knew it (its thread only)

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
        self._bytes = self._count_bytes(connection)

    @staticmethod
    def _count_bytes(connection: sqlite3.Connection) -> int:
        (size,) = connection.execute(f"SELECT COALESCE(SUM({_SIZE}), 0) FROM {TABLE}").fetchone()
        return int(size)

    def _evict(self, connection: sqlite3.Connection, max_bytes: int) -> None:
        """Delete the oldest-written entries until the table is at ``EVICT_TO`` of the bound."""
        excess = self._bytes - int(max_bytes * EVICT_TO)
        freed, last = 0, -1
        while freed < excess:
            rows = connection.execute(
                f"SELECT rowid, {_SIZE} FROM {TABLE} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (last, _EVICT_BATCH),
            ).fetchall()
            if not rows:
                break
            for rowid, size in rows:
                freed += size
                last = rowid
                if freed >= excess:
                    break
        connection.execute(f"DELETE FROM {TABLE} WHERE rowid <= ?", (last,))
        self._bytes -= freed

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

        max_bytes = self.max_bytes

        def write(connection: sqlite3.Connection) -> None:
            now = time.time()
            replaced = connection.execute(
                f"SELECT {_SIZE} FROM {TABLE} WHERE key = ?", (row[0],)
            ).fetchone()
            connection.execute(
                f"INSERT OR REPLACE INTO {TABLE} (key, namespace, model, value, drop_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (*row, now + keep_for),
            )
            self._bytes += len(row[0]) + len(value) - (replaced[0] if replaced else 0)
            if sweep:
                connection.execute(f"DELETE FROM {TABLE} WHERE drop_at <= ?", (now,))
                self._bytes = self._count_bytes(connection)
            if max_bytes is not None and self._bytes > max_bytes:
                self._evict(connection, max_bytes)

        await self._run(write)

    async def purge(self, namespace: str | None, model: str | None) -> int:
        def delete(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                f"DELETE FROM {TABLE} WHERE (?1 IS NULL OR namespace = ?1) "
                "AND (?2 IS NULL OR model = ?2)",
                (namespace, model),
            )
            self._bytes = self._count_bytes(connection)
            return cursor.rowcount

        return await self._run(delete)

    async def usage(self) -> BackendUsage:
        def count(connection: sqlite3.Connection) -> BackendUsage:
            entries, size = connection.execute(
                f"SELECT COUNT(*), COALESCE(SUM({_SIZE}), 0) FROM {TABLE} WHERE drop_at > ?",
                (time.time(),),
            ).fetchone()
            return BackendUsage(entries=int(entries), bytes=int(size))

        return await self._run(count)
