"""Ledger totals over time for the console's overview: one query per chart set.

The whole server's series comes from the per-minute and per-hour totals
(``usage_buckets``): a day is at most 1,440 minute rows, a month 720 hour rows, however
busy the gateway was. One key's series comes from its own
ledger rows through the ``(key_id, created_at)`` index. Either way each bucket carries a
latency histogram, so percentiles never need the raw latencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Integer, case, cast, func, select

from portway.store.database import Database
from portway.store.models import UsageRow
from portway.store.models.usage import LATENCY_BINS_MS, LATENCY_COLUMNS
from portway.store.usage_rollups import CACHE_HITS, buckets_query, slot

_usage = UsageRow.__table__


@dataclass(slots=True)
class Bucket:
    """One time bucket's totals; ``latency_bins[i]`` counts calls in bin ``i``."""

    start: int
    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nanos: int = 0
    latency_bins: list[int] = field(default_factory=lambda: [0] * len(LATENCY_COLUMNS))


def _latency_bin() -> object:
    latency = _usage.c.latency_ms
    return case(
        *((latency < bound, index) for index, bound in enumerate(LATENCY_BINS_MS)),
        else_=len(LATENCY_BINS_MS),
    )


class UsageSeries:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def buckets(
        self, since: float, until: float, step: int, key_id: str | None = None
    ) -> list[Bucket]:
        """Buckets of ``step`` seconds (a multiple of 60) over ``[since, until)`` that had
        calls, oldest first; only ``key_id``'s calls when it is given."""
        if key_id is None:
            return await self._all(since, until, step)
        return await self._key(since, until, step, key_id)

    async def _all(self, since: float, until: float, step: int) -> list[Bucket]:
        async with self._db.connect() as connection:
            query = buckets_query(since, until, step, connection.dialect.name)
            rows = (await connection.execute(query)).mappings().all()
        buckets = []
        for row in sorted(rows, key=lambda r: r["slot"]):
            buckets.append(
                Bucket(
                    start=int(row["slot"]) * step,
                    requests=int(row["requests"] or 0),
                    errors=int(row["errors"] or 0),
                    cache_hits=int(row["cache_hits"] or 0),
                    prompt_tokens=int(row["prompt_tokens"] or 0),
                    completion_tokens=int(row["completion_tokens"] or 0),
                    cost_nanos=int(row["cost_nanos"] or 0),
                    latency_bins=[int(row[name] or 0) for name in LATENCY_COLUMNS],
                )
            )
        return buckets

    async def _key(self, since: float, until: float, step: int, key_id: str) -> list[Bucket]:
        latency_bin = _latency_bin().label("bin")  # type: ignore[attr-defined]
        async with self._db.connect() as connection:
            bucket = slot(_usage.c.created_at, step, connection.dialect.name).label("slot")
            query = (
                select(
                    bucket,
                    latency_bin,
                    func.count().label("requests"),
                    func.sum(cast(_usage.c.status >= 400, Integer)).label("errors"),
                    func.sum(cast(_usage.c.cache_status.in_(CACHE_HITS), Integer)).label(
                        "cache_hits"
                    ),
                    func.sum(_usage.c.prompt_tokens).label("prompt_tokens"),
                    func.sum(_usage.c.completion_tokens).label("completion_tokens"),
                    func.sum(_usage.c.cost_nanos).label("cost_nanos"),
                )
                .where(
                    _usage.c.key_id == key_id,
                    _usage.c.created_at >= since,
                    _usage.c.created_at < until,
                )
                .group_by(bucket, latency_bin)
            )
            rows = (await connection.execute(query)).all()
        by_slot: dict[int, Bucket] = {}
        for row in rows:
            found = by_slot.get(row.slot)
            if found is None:
                found = by_slot[row.slot] = Bucket(start=int(row.slot) * step)
            found.requests += int(row.requests)
            found.errors += int(row.errors or 0)
            found.cache_hits += int(row.cache_hits or 0)
            found.prompt_tokens += int(row.prompt_tokens or 0)
            found.completion_tokens += int(row.completion_tokens or 0)
            found.cost_nanos += int(row.cost_nanos or 0)
            found.latency_bins[int(row.bin)] += int(row.requests)
        return [by_slot[key] for key in sorted(by_slot)]
