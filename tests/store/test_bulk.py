"""``BulkInsert`` on SQLite and PostgreSQL: rows as the driver binds them, defaults filled."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portway.store import Database
from portway.store import bulk as bulk_module
from portway.store.bulk import BulkInsert
from portway.store.models import UsageRow

_usage = UsageRow.__table__


def ledger_row(n: int, **fields: object) -> dict[str, object]:
    return {
        "record_id": f"bulk{n:04d}",
        "created_at": 1000.0 + n,
        "request_id": f"req{n}",
        "endpoint": "chat.completions",
        "model": "m",
        "latency_ms": 3,  # an int into a float column: both drivers must take it
        "status": 200,
        "usage_estimated": n % 2 == 0,
        "stream": True,
        **fields,
    }


async def test_rows_round_trip_with_the_columns_they_leave_out_defaulted(
    database: Database,
) -> None:
    bulk = BulkInsert(_usage)
    async with database.write() as connection:
        await bulk.execute(connection, [ledger_row(n, prompt_tokens=n) for n in range(5)])
        await bulk.execute(connection, [])
    async with database.connect() as connection:
        rows = (await connection.execute(select(_usage).order_by(_usage.c.record_id))).all()
    assert [row.prompt_tokens for row in rows] == [0, 1, 2, 3, 4]
    assert [bool(row.usage_estimated) for row in rows] == [True, False, True, False, True]
    first = rows[0]
    assert (first.completion_tokens, first.cost_nanos, first.attempts) == (0, 0, 0)
    assert first.latency_ms == 3.0 and first.key_id is None and bool(first.stream)


async def test_an_unknown_column_is_refused_before_anything_is_written(
    database: Database,
) -> None:
    bulk = BulkInsert(_usage)
    with pytest.raises(ValueError, match="no columns"):
        async with database.write() as connection:
            await bulk.execute(connection, [ledger_row(1, colour="blue")])
    async with database.connect() as connection:
        assert (await connection.execute(select(_usage.c.id))).first() is None


async def test_more_rows_than_one_statement_binds_are_all_written_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small statement size: the 1,203 rows take several multi-row statements on SQLite.
    monkeypatch.setattr(bulk_module, "MAX_ROWS_PER_STATEMENT", 100)
    bulk = BulkInsert(_usage)
    async with database.write() as connection:
        await bulk.execute(connection, [ledger_row(n, prompt_tokens=n) for n in range(1203)])
    async with database.connect() as connection:
        rows = (await connection.execute(select(_usage).order_by(_usage.c.created_at))).all()
    assert [row.record_id for row in rows] == [f"bulk{n:04d}" for n in range(1203)]
    assert [row.prompt_tokens for row in rows] == list(range(1203))


def test_a_statement_of_many_rows_repeats_the_values_of_one() -> None:
    sql = "INSERT INTO t (a, b) VALUES (?, ?)"
    assert bulk_module._multi_row(sql, 3) == "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)"
    with pytest.raises(RuntimeError, match="single-row"):
        bulk_module._multi_row("INSERT INTO t (a) VALUES (?), (?)", 2)
