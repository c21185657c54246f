"""Per-minute totals of the ledger (``usage_minutes``), kept by the ledger's own writes.

Contract: every ledger row the usage repository inserts is added to its minute's totals
in the same transaction (an upsert that adds), so the totals never drift from the rows.
Latency goes into fixed bins (``LATENCY_BINS_MS``): percentiles come from the bins.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from portway.store.models.usage import LATENCY_BINS_MS, LATENCY_COLUMNS, UsageMinuteRow

_minutes = UsageMinuteRow.__table__
SUMMED = (
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cost_nanos",
    *LATENCY_COLUMNS,
)
CACHE_HITS = ("hit", "semantic-hit")


def latency_bin(latency_ms: float) -> int:
    """The bin of a latency: the number of bounds at or below it."""
    return bisect_right(LATENCY_BINS_MS, latency_ms)


def minute_totals(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, int]]:
    """Ledger rows summed per minute, oldest minute first (the upsert's lock order)."""
    totals: dict[int, dict[str, int]] = {}
    for row in rows:
        minute = int(row["created_at"] // 60) * 60
        total = totals.get(minute)
        if total is None:
            total = totals[minute] = {"minute": minute, **dict.fromkeys(SUMMED, 0)}
        total["requests"] += 1
        total["errors"] += int(row["status"] >= 400)
        total["cache_hits"] += int(row.get("cache_status") in CACHE_HITS)
        total["prompt_tokens"] += int(row.get("prompt_tokens") or 0)
        total["completion_tokens"] += int(row.get("completion_tokens") or 0)
        total["cost_nanos"] += int(row.get("cost_nanos") or 0)
        total[LATENCY_COLUMNS[latency_bin(float(row["latency_ms"]))]] += 1
    return [totals[minute] for minute in sorted(totals)]


async def add_minutes_in(connection: AsyncConnection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add ledger rows to their minutes' totals inside the caller's transaction."""
    totals = minute_totals(rows)
    if not totals:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_minutes)
    statement = statement.on_conflict_do_update(
        index_elements=[_minutes.c.minute],
        set_={name: _minutes.c[name] + statement.excluded[name] for name in SUMMED},
    )
    await connection.execute(statement, totals)


def slot(column: Any, step: int, dialect: str) -> Any:
    """The index of the ``step``-second bucket a time falls in (floor on every backend:
    PostgreSQL's CAST rounds)."""
    if dialect == "postgresql":
        return cast(func.floor(column / step), BigInteger)
    return cast(column / step, Integer)


def minute_buckets_query(since: float, until: float, step: int, dialect: str) -> Any:
    """Totals per ``step`` bucket (a multiple of 60 s) over ``[since, until)``."""
    bucket = slot(_minutes.c.minute, step, dialect).label("slot")
    return (
        select(bucket, *(func.sum(_minutes.c[name]).label(name) for name in SUMMED))
        .where(_minutes.c.minute >= since, _minutes.c.minute < until)
        .group_by(bucket)
    )
