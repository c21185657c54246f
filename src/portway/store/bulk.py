"""Bulk inserts for the background writers (ledger, request log), compiled once.

SQLAlchemy's Core ``insert(table)`` with a list of dicts compiles (or looks up) the
statement and runs every value through its parameter processing on each call: for the
write-behind tables that is a third of a row's CPU, spent on the event loop the requests
share. Their columns are plain numbers, strings and booleans that both drivers bind
natively, so the rows go to the driver as tuples instead.

On SQLite they go as multi-row ``INSERT ... VALUES (...), (...)`` statements, not as an
``executemany``: the ``sqlite3`` module releases and retakes the GIL around every row of an
``executemany``, and each retake from the database thread waits for the event loop's
thread to let go of it, so a batch of a few hundred rows became a few hundred thread
switches interleaved with the requests being served. PostgreSQL (asyncpg) pipelines an
``executemany`` on the event loop itself and keeps it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

# The SQL, and each positional parameter's column with its default for a row without it.
_Rendered = tuple[str, tuple[tuple[str, Any], ...]]
# SQLite (3.32 and later) binds at most 32,766 parameters per statement.
SQLITE_MAX_VARIABLES = 32_766
MAX_ROWS_PER_STATEMENT = 500


@lru_cache(maxsize=64)
def _multi_row(sql: str, rows: int) -> str:
    """``INSERT ... VALUES (?, ?)`` for one row made into the same insert of ``rows`` rows."""
    head, values = sql.rsplit(" VALUES ", 1)
    if not (values.startswith("(") and values.endswith(")")) or ")" in values[:-1]:
        raise RuntimeError(f"not a single-row insert: {sql}")
    return f"{head} VALUES {', '.join(itertools.repeat(values, rows))}"


class BulkInsert:
    """``INSERT INTO table`` for many rows of one shape, rendered once per dialect and
    shape. A column a row leaves out gets its scalar Python-side default, as Core gives it."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self._defaults = {
            column.name: column.default.arg
            for column in table.columns
            if column.default is not None and column.default.is_scalar
        }
        self._rendered: dict[tuple[str, tuple[str, ...]], _Rendered] = {}

    def _render(self, connection: AsyncConnection, given: tuple[str, ...]) -> _Rendered:
        dialect = connection.dialect
        rendered = self._rendered.get((dialect.name, given))
        if rendered is None:
            unknown = set(given) - set(self._table.c.keys())
            if unknown:
                raise ValueError(f"{self._table.name} has no columns {sorted(unknown)}")
            columns = (*given, *(name for name in self._defaults if name not in given))
            compiled = insert(self._table).compile(dialect=dialect, column_keys=columns)
            order = tuple(compiled.positiontup or ())
            if set(order) != set(columns):  # a dialect with named parameters
                raise RuntimeError(f"{dialect.name}: bulk inserts need positional parameters")
            named = tuple((name, self._defaults.get(name)) for name in order)
            rendered = self._rendered[(dialect.name, given)] = (str(compiled), named)
        return rendered

    async def execute(self, connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (mappings with the same keys) in the caller's transaction."""
        if not rows:
            return
        sql, named = self._render(connection, tuple(rows[0]))
        values = [tuple(row.get(name, default) for name, default in named) for row in rows]
        if connection.dialect.name != "sqlite":
            await connection.exec_driver_sql(sql, values)
            return
        per_statement = max(1, min(MAX_ROWS_PER_STATEMENT, SQLITE_MAX_VARIABLES // len(named)))
        for start in range(0, len(values), per_statement):
            chunk = values[start : start + per_statement]
            await connection.exec_driver_sql(
                _multi_row(sql, len(chunk)), tuple(itertools.chain.from_iterable(chunk))
            )
