"""Helpers of the privacy tests: find a marker string anywhere Portway keeps state."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg


def tables_containing(db_file: Path, marker: str) -> dict[str, int]:
    """Every table of a SQLite file whose text (any column, as text) holds ``marker``."""
    found: dict[str, int] = {}
    with sqlite3.connect(db_file) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
            if not columns:
                continue
            where = " OR ".join(f'instr(CAST("{c}" AS TEXT), ?) > 0' for c in columns)
            (count,) = connection.execute(
                f'SELECT count(*) FROM "{table}" WHERE {where}', [marker] * len(columns)
            ).fetchone()
            if count:
                found[table] = count
    return found


def files_containing(directory: Path, marker: str) -> list[str]:
    """Every file under ``directory`` whose bytes hold ``marker`` (databases, WAL files,
    journals, cache files, stored uploads)."""
    needle = marker.encode("utf-8")
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and needle in path.read_bytes()
    )


def postgres_tables_containing(url: str, marker: str) -> dict[str, int]:
    """Like ``tables_containing`` for a PostgreSQL database (each row cast to text)."""

    async def scan() -> dict[str, int]:
        connection = await asyncpg.connect(url)
        try:
            tables = await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
            found: dict[str, int] = {}
            for (table,) in tables:
                count = await connection.fetchval(
                    f'SELECT count(*) FROM "{table}" AS r WHERE strpos(r::text, $1) > 0',
                    marker,
                )
                if count:
                    found[table] = count
            return found
        finally:
            await connection.close()

    return asyncio.run(scan())
