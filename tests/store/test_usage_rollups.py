"""Ledger rollups: kept by the ledger's own writes, equal to the rows they sum."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import select

from portway.store import Database
from portway.store.models import UsageBucketRow
from portway.store.models.usage import LATENCY_COLUMNS
from portway.store.usage import UsageFilter, UsageRepository
from portway.store.usage_rollups import latency_bin
from portway.store.usage_series import UsageSeries

BASE = 1_764_000_000.0  # a whole minute


def ledger_row(n: int, rng: random.Random, key: str) -> dict[str, Any]:
    return {
        "record_id": f"rec{n:08d}",
        "created_at": BASE + rng.random() * 600,
        "request_id": f"req{n}",
        "endpoint": "/v1/chat/completions",
        "key_id": key,
        "user_id": None,
        "team_id": rng.choice(("red", None)),
        "model": rng.choice(("m", "n")),
        "deployment": "m",
        "prompt_tokens": rng.randrange(1, 100),
        "completion_tokens": rng.randrange(1, 50),
        "cached_tokens": 0,
        "usage_estimated": False,
        "cost_nanos": rng.randrange(0, 10_000),
        "cost_saved_nanos": 0,
        "latency_ms": rng.lognormvariate(4, 1.5),
        "ttft_ms": None,
        "status": rng.choice((200, 200, 200, 429, 500)),
        "error_code": None,
        "cache_status": rng.choice(("hit", "miss", "semantic-hit", None)),
        "context_strategy": None,
        "attempts": 1,
        "stream": False,
    }


def test_latency_bins_are_half_open() -> None:
    assert latency_bin(0.0) == 0
    assert latency_bin(4.99) == 0
    assert latency_bin(5.0) == 1
    assert latency_bin(1e9) == len(LATENCY_COLUMNS) - 1


async def test_ledger_writes_keep_the_rollups_equal_to_the_rows(
    database: Database,
) -> None:
    rng = random.Random(3)
    rows = [ledger_row(n, rng, f"key_{n % 3}") for n in range(400)]
    usage = UsageRepository(database)
    for start in range(0, len(rows), 70):  # several batches touch the same minutes
        await usage.append(rows[start : start + 70])
    # Recovery inserts only the missing rows, and adds only those to the totals.
    extra = [ledger_row(n, rng, "key_0") for n in range(400, 420)]
    await usage.append_missing(rows[:50] + extra, {r["record_id"]: () for r in rows[:50] + extra})
    everything = rows + extra

    async with database.connect() as connection:
        all_buckets = (await connection.execute(select(UsageBucketRow.__table__))).mappings()
        stored = [row for row in all_buckets.all() if row["span"] == 60]
    assert sum(row["requests"] for row in stored) == len(everything)
    assert sum(row["cost_nanos"] for row in stored) == sum(r["cost_nanos"] for r in everything)
    assert sum(row["errors"] for row in stored) == sum(r["status"] >= 400 for r in everything)
    for row in stored:
        assert sum(row[name] for name in LATENCY_COLUMNS) == row["requests"]
        assert row["start"] % 60 == 0

    series = UsageSeries(database)
    whole = await series.buckets(BASE, BASE + 3600, 300)
    by_key = await series.buckets(BASE, BASE + 3600, 300, key_id="key_0")
    assert [b.start for b in whole] == [BASE, BASE + 300]
    assert sum(b.requests for b in whole) == len(everything)
    assert sum(b.prompt_tokens for b in whole) == sum(r["prompt_tokens"] for r in everything)
    own = [r for r in everything if r["key_id"] == "key_0"]
    assert sum(b.requests for b in by_key) == len(own)
    assert sum(b.cache_hits for b in by_key) == sum(
        r["cache_status"] in ("hit", "semantic-hit") for r in own
    )
    for bucket in whole + by_key:
        assert sum(bucket.latency_bins) == bucket.requests
    # The server-wide histogram and a key's (counted from raw rows) bin latencies alike.
    bins = [0] * len(LATENCY_COLUMNS)
    for r in own:
        bins[latency_bin(r["latency_ms"])] += 1
    assert [sum(col) for col in zip(*(b.latency_bins for b in by_key), strict=True)] == bins


async def test_whole_day_reports_from_the_daily_rollup_equal_the_ledger_rows(
    database: Database,
) -> None:
    rng = random.Random(5)
    rows = [ledger_row(n, rng, rng.choice(("key_a", "key_b", None))) for n in range(300)]
    usage = UsageRepository(database)
    await usage.append(rows)
    day_start = BASE // 86400 * 86400
    for group_by in ([], ["key"], ["team"], ["model"], ["day"], ["key", "model"]):
        for where in (UsageFilter(), UsageFilter(model="m"), UsageFilter(key_id="key_a")):
            from_rollup = await usage.summary(where, group_by)  # no time bound: whole days
            # A bound that is not a whole day makes the same report read the ledger rows.
            raw_where = UsageFilter(key_id=where.key_id, model=where.model, since=day_start + 0.5)
            from_rows = await usage.summary(raw_where, group_by)

            # PostgreSQL sorts a missing key last, the rollup's "" first: match by group.
            def by_group(items: list[dict[str, Any]], names: list[str]) -> dict[Any, Any]:
                return {tuple(item[name] for name in names): item for item in items}

            rolled_up = by_group(from_rollup, group_by)
            counted = by_group(from_rows, group_by)
            assert rolled_up.keys() == counted.keys(), (group_by, where)
            for group, rolled in rolled_up.items():
                raw = counted[group]
                assert rolled.pop("avg_latency_ms") == pytest.approx(raw.pop("avg_latency_ms"))
                assert rolled == raw, (group_by, where)
