"""The usage ledger repository: batched appends (with budget settlements) and reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from portway.store.budgets import Settlement, settle_in
from portway.store.bulk import BulkInsert
from portway.store.database import Database
from portway.store.models import UsageRow
from portway.store.usage_rollups import (
    DAILY_GROUPS,
    add_rollups_in,
    daily_covers,
    daily_summary_query,
    day_of,
)

_usage = UsageRow.__table__
_insert_usage = BulkInsert(_usage)
GroupBy = Literal["key", "user", "team", "model", "deployment", "endpoint", "day", "status"]
GROUP_COLUMNS: dict[str, Any] = {
    "key": _usage.c.key_id,
    "user": _usage.c.user_id,
    "team": _usage.c.team_id,
    "model": _usage.c.model,
    "deployment": _usage.c.deployment,
    "endpoint": _usage.c.endpoint,
    "day": day_of(_usage.c.created_at),
    "status": _usage.c.status,
}
ROW_COLUMNS = tuple(column.name for column in _usage.columns)


@dataclass(frozen=True, slots=True)
class UsageFilter:
    key_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    model: str | None = None
    since: float | None = None
    until: float | None = None

    def equal(self) -> dict[str, str | None]:
        """The exact-match filters, by report group name."""
        return {"key": self.key_id, "user": self.user_id, "team": self.team_id, "model": self.model}

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (_usage.c.key_id, self.key_id),
            (_usage.c.user_id, self.user_id),
            (_usage.c.team_id, self.team_id),
            (_usage.c.model, self.model),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.since is not None:
            conditions.append(_usage.c.created_at >= self.since)
        if self.until is not None:
            conditions.append(_usage.c.created_at < self.until)
        return conditions


def _day(value: int) -> str:
    return dt.datetime.fromtimestamp(value * 86400, dt.UTC).date().isoformat()


class UsageRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def append(
        self, rows: Sequence[dict[str, Any]], settlements: Sequence[Settlement] = ()
    ) -> None:
        """Insert ledger rows (and add them to their minutes' totals) and settle their
        budget reservations in one transaction."""
        async with self._db.write() as connection:
            if rows:
                await _insert_usage.execute(connection, rows)
                await add_rollups_in(connection, rows)
            if settlements:
                await settle_in(connection, settlements, wrote=bool(rows))

    async def append_missing(
        self, rows: Sequence[dict[str, Any]], settlements: dict[str, tuple[Settlement, ...]]
    ) -> int:
        """Recovery: insert the rows whose ``record_id`` is not stored yet and settle only
        theirs (and those of settlement-only records), in one transaction."""
        ids = list(settlements)
        async with self._db.write() as connection:
            present: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                result = await connection.execute(
                    select(_usage.c.record_id).where(_usage.c.record_id.in_(chunk))
                )
                present.update(result.scalars().all())
            fresh = [row for row in rows if row["record_id"] not in present]
            if fresh:
                await _insert_usage.execute(connection, fresh)
                await add_rollups_in(connection, fresh)
            to_settle = [
                s for rid, group in settlements.items() if rid not in present for s in group
            ]
            if to_settle:
                await settle_in(connection, to_settle, wrote=bool(fresh))
        return len(fresh)

    async def summary(
        self, where: UsageFilter, group_by: Sequence[str] = (), limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """Totals per group (all rows as one group when ``group_by`` is empty).

        Whole UTC days grouped and filtered by key, user, team, model or day are read from
        the daily rollup (a month of a busy gateway is thousands of rows, not millions);
        anything else from the ledger rows themselves."""
        if daily_covers(group_by, where.equal(), where.since, where.until):
            query = daily_summary_query(group_by, where.equal(), where.since, where.until)
            return await self._summaries(query.limit(limit), bool(group_by), rollup=True)
        keys = [GROUP_COLUMNS[name].label(name) for name in group_by]
        totals = [
            func.count().label("requests"),
            func.coalesce(func.sum(_usage.c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(_usage.c.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(_usage.c.cached_tokens), 0).label("cached_tokens"),
            func.coalesce(func.sum(_usage.c.cost_nanos), 0).label("cost_nanos"),
            func.coalesce(func.sum(_usage.c.cost_saved_nanos), 0).label("cost_saved_nanos"),
            func.sum(cast(_usage.c.status >= 400, Integer)).label("errors"),
            func.sum(cast(_usage.c.cache_status.in_(["hit", "semantic-hit"]), Integer)).label(
                "cache_hits"
            ),
            func.avg(_usage.c.latency_ms).label("avg_latency_ms"),
        ]
        query = select(*keys, *totals).where(*where.conditions())
        if keys:
            group_columns = [GROUP_COLUMNS[name] for name in group_by]
            query = query.group_by(*group_columns).order_by(*group_columns)
        return await self._summaries(query.limit(limit), bool(keys), rollup=False)

    async def _summaries(self, query: Any, grouped: bool, *, rollup: bool) -> list[dict[str, Any]]:
        async with self._db.connect() as connection:
            result = (await connection.execute(query)).mappings().all()
        summaries = []
        for row in result:
            item = dict(row)
            if rollup:  # the rollup stores "" for no key, user or team
                for name in DAILY_GROUPS:
                    if item.get(name) == "":
                        item[name] = None
            if item["requests"] == 0 and not grouped:
                item["errors"] = item["cache_hits"] = 0
            for name in ("errors", "cache_hits"):
                item[name] = int(item[name] or 0)
            if "day" in item and item["day"] is not None:
                item["day"] = _day(int(item["day"]))
            summaries.append(item)
        return summaries

    async def rows(
        self, where: UsageFilter, limit: int = 10_000, offset: int = 0
    ) -> list[dict[str, Any]]:
        query = (
            select(_usage)
            .where(*where.conditions())
            .order_by(_usage.c.created_at, _usage.c.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._db.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings().all()]

    async def count(self, where: UsageFilter = UsageFilter()) -> int:
        query = select(func.count()).select_from(_usage).where(*where.conditions())
        async with self._db.connect() as connection:
            return int((await connection.execute(query)).scalar_one())
