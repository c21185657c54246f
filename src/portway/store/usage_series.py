"""Ledger rows over time for the console's overview: one query per chart set.

Each time bucket gets its totals plus a latency histogram (fixed bins, counted in SQL) so
percentiles come out of a few thousand rows, never the raw latencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Integer, case, cast, func, select

from portway.store.database import Database
from portway.store.models import UsageRow

_usage = UsageRow.__table__
# Upper bounds (ms) of the latency bins; the last bin is open-ended.
LATENCY_BINS_MS = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    120000,
)


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
    latency_bins: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BINS_MS) + 1))


def _bin_expression() -> object:
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
        """Buckets of ``step`` seconds over ``[since, until)`` that have any calls, oldest first."""
        slot = cast(_usage.c.created_at / step, Integer).label("slot")
        latency_bin = _bin_expression().label("bin")  # type: ignore[attr-defined]
        query = select(
            slot,
            latency_bin,
            func.count().label("requests"),
            func.sum(cast(_usage.c.status >= 400, Integer)).label("errors"),
            func.sum(cast(_usage.c.cache_status.in_(["hit", "semantic-hit"]), Integer)).label(
                "cache_hits"
            ),
            func.sum(_usage.c.prompt_tokens).label("prompt_tokens"),
            func.sum(_usage.c.completion_tokens).label("completion_tokens"),
            func.sum(_usage.c.cost_nanos).label("cost_nanos"),
        ).where(_usage.c.created_at >= since, _usage.c.created_at < until)
        if key_id is not None:
            query = query.where(_usage.c.key_id == key_id)
        query = query.group_by(slot, latency_bin)
        async with self._db.connect() as connection:
            rows = (await connection.execute(query)).all()
        by_slot: dict[int, Bucket] = {}
        for row in rows:
            bucket = by_slot.get(row.slot)
            if bucket is None:
                bucket = by_slot[row.slot] = Bucket(start=int(row.slot) * step)
            bucket.requests += int(row.requests)
            bucket.errors += int(row.errors or 0)
            bucket.cache_hits += int(row.cache_hits or 0)
            bucket.prompt_tokens += int(row.prompt_tokens or 0)
            bucket.completion_tokens += int(row.completion_tokens or 0)
            bucket.cost_nanos += int(row.cost_nanos or 0)
            bucket.latency_bins[int(row.bin)] += int(row.requests)
        return [by_slot[slot] for slot in sorted(by_slot)]
