"""Ledger rollups, kept by the ledger's own writes: per-minute and per-hour totals
(``usage_buckets``, the overview's charts) and per-day totals by key, user, team and model
(``usage_daily``, usage reports over whole days).

Contract: every ledger row the usage repository inserts is added to its rollups in the
same transaction (upserts that add), so a rollup never drifts from the rows it sums.
Latency goes into fixed bins (``LATENCY_BINS_MS``): percentiles come from the bins.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Integer, case, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from portway.store.models.usage import (
    LATENCY_BINS_MS,
    LATENCY_COLUMNS,
    UsageBucketRow,
    UsageDailyRow,
)

_buckets = UsageBucketRow.__table__
_daily = UsageDailyRow.__table__
SPANS = (60, 3600)
DAY = 86400
BUCKET_SUMS = (
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cost_nanos",
    *LATENCY_COLUMNS,
)
DAILY_SUMS = (
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_nanos",
    "cost_saved_nanos",
    "latency_ms",
)
DAILY_GROUPS = {"key": "key_id", "user": "user_id", "team": "team_id", "model": "model"}
CACHE_HITS = ("hit", "semantic-hit")


def latency_bin(latency_ms: float) -> int:
    """The bin of a latency: the number of bounds at or below it."""
    return bisect_right(LATENCY_BINS_MS, latency_ms)


def bucket_totals(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, int]]:
    """Ledger rows summed per minute and per hour, in key order (the upserts' lock order)."""
    totals: dict[tuple[int, int], dict[str, int]] = {}
    for row in rows:
        created = float(row["created_at"])
        values = (
            1,
            int(row["status"] >= 400),
            int(row.get("cache_status") in CACHE_HITS),
            int(row.get("prompt_tokens") or 0),
            int(row.get("completion_tokens") or 0),
            int(row.get("cost_nanos") or 0),
        )
        latency = LATENCY_COLUMNS[latency_bin(float(row["latency_ms"]))]
        for span in SPANS:
            key = (span, int(created // span) * span)
            total = totals.get(key)
            if total is None:
                total = totals[key] = {
                    "span": span,
                    "start": key[1],
                    **dict.fromkeys(BUCKET_SUMS, 0),
                }
            for name, value in zip(BUCKET_SUMS, values, strict=False):
                total[name] += value
            total[latency] += 1
    return [totals[key] for key in sorted(totals)]


def daily_totals(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ledger rows summed per UTC day, key, user, team and model ("" for none)."""
    totals: dict[tuple[int, str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (
            int(float(row["created_at"]) // DAY),
            row.get("key_id") or "",
            row.get("user_id") or "",
            row.get("team_id") or "",
            row.get("model") or "",
        )
        total = totals.get(key)
        if total is None:
            total = totals[key] = {
                **dict(zip(("day", "key_id", "user_id", "team_id", "model"), key, strict=True)),
                **dict.fromkeys(DAILY_SUMS, 0),
            }
        total["requests"] += 1
        total["errors"] += int(row["status"] >= 400)
        total["cache_hits"] += int(row.get("cache_status") in CACHE_HITS)
        for name in (
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "cost_nanos",
            "cost_saved_nanos",
        ):
            total[name] += int(row.get(name) or 0)
        total["latency_ms"] += float(row["latency_ms"])
    return [totals[key] for key in sorted(totals)]


@cache
def _adding_upsert(
    dialect_name: str, table: Any, keys: tuple[str, ...], sums: tuple[str, ...]
) -> Any:
    """The upsert that adds ``sums`` into the row at ``keys``, built once per dialect (its
    cache key is as dear to compute as the statement is to build)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in keys],
        set_={name: table.c[name] + statement.excluded[name] for name in sums},
    )


async def add_rollups_in(connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add ledger rows to their rollups inside the caller's transaction."""
    if not rows:
        return
    dialect = connection.dialect.name
    await connection.execute(
        _adding_upsert(dialect, _buckets, ("span", "start"), BUCKET_SUMS), bucket_totals(rows)
    )
    await connection.execute(
        _adding_upsert(
            dialect, _daily, ("day", "key_id", "user_id", "team_id", "model"), DAILY_SUMS
        ),
        daily_totals(rows),
    )


def slot(column: Any, step: int, dialect: str = "") -> Any:
    """The index of the ``step``-second bucket a time falls in: ``floor(column / step)``
    on every backend (PostgreSQL's CAST rounds, SQLite's truncates, and SQLite may lack
    FLOOR), so one less where the cast rounded up."""
    exact = column / step
    whole = cast(exact, BigInteger if dialect == "postgresql" else Integer)
    return whole - case((whole > exact, 1), else_=0)


def day_of(column: Any) -> Any:
    """The UTC day number of an epoch-seconds column, on every backend."""
    return slot(column, DAY)


def buckets_query(since: float, until: float, step: int, dialect: str) -> Any:
    """Totals per ``step`` bucket over ``[since, until)`` from the finest rollup that
    divides ``step`` (minutes for steps under an hour, else hours)."""
    span = 3600 if step % 3600 == 0 else 60
    bucket = slot(_buckets.c.start, step, dialect).label("slot")
    return (
        select(bucket, *(func.sum(_buckets.c[name]).label(name) for name in BUCKET_SUMS))
        .where(_buckets.c.span == span, _buckets.c.start >= since, _buckets.c.start < until)
        .group_by(bucket)
    )


def daily_covers(
    group_by: Sequence[str],
    equal: Mapping[str, str | None],
    since: float | None,
    until: float | None,
) -> bool:
    """Whether ``usage_daily`` answers a report exactly: whole UTC days, its dimensions only."""
    return (
        all(name in DAILY_GROUPS or name == "day" for name in group_by)
        and all(name in DAILY_GROUPS for name, value in equal.items() if value is not None)
        and all(bound is None or bound % DAY == 0 for bound in (since, until))
    )


def daily_summary_query(
    group_by: Sequence[str],
    equal: Mapping[str, str | None],
    since: float | None,
    until: float | None,
) -> Any:
    """The usage report's totals per group from ``usage_daily`` (see ``daily_covers``)."""
    columns = {name: _daily.c[column] for name, column in DAILY_GROUPS.items()}
    columns["day"] = _daily.c.day
    keys = [columns[name].label(name) for name in group_by]
    requests = func.coalesce(func.sum(_daily.c.requests), 0)
    totals = [
        requests.label("requests"),
        *(
            func.coalesce(func.sum(_daily.c[name]), 0).label(name)
            for name in (
                "prompt_tokens",
                "completion_tokens",
                "cached_tokens",
                "cost_nanos",
                "cost_saved_nanos",
                "errors",
                "cache_hits",
            )
        ),
        (func.sum(_daily.c.latency_ms) / func.nullif(requests, 0)).label("avg_latency_ms"),
    ]
    conditions: list[ColumnElement[bool]] = [
        columns[name] == value for name, value in equal.items() if value is not None
    ]
    if since is not None:
        conditions.append(_daily.c.day >= int(since // DAY))
    if until is not None:
        conditions.append(_daily.c.day < int(until // DAY))
    query = select(*keys, *totals).where(*conditions)
    if keys:
        group_columns = [columns[name] for name in group_by]
        query = query.group_by(*group_columns).order_by(*group_columns)
    return query
