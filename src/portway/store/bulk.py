"""Bulk inserts for the background writers (ledger, request log), compiled once.

SQLAlchemy's Core ``insert(table)`` with a list of dicts compiles (or looks up) the
statement and runs every value through its parameter processing on each call: for the
write-behind tables that is a third of a row's CPU, spent on the event loop the requests
share. Their columns are plain numbers, strings and booleans that both drivers bind
natively, so the rows go to the driver's ``executemany`` as tuples instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

# The SQL, and each positional parameter's column with its default for a row without it.
_Rendered = tuple[str, tuple[tuple[str, Any], ...]]


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
        await connection.exec_driver_sql(
            sql, [tuple(row.get(name, default) for name, default in named) for row in rows]
        )
