"""The request log repository: batched appends, filtered newest-first pages, purges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from portway.store.bulk import BulkInsert
from portway.store.database import Database
from portway.store.models import RequestLogRow

_log = RequestLogRow.__table__
_insert_log = BulkInsert(_log)
# What a list shows: everything but the spans and the bodies (read by ``get`` only).
_LIST_COLUMNS = tuple(
    column
    for column in _log.columns
    if column.name not in ("spans", "request_body", "response_body")
)
PURGE_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class RequestLogFilter:
    since: float | None = None
    until: float | None = None
    key_id: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    endpoint: str | None = None
    # "success" (< 400), "error" (>= 400) or one HTTP status code.
    status: str | int | None = None
    min_latency_ms: float | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (_log.c.key_id, self.key_id),
            (_log.c.team_id, self.team_id),
            (_log.c.user_id, self.user_id),
            (_log.c.model, self.model),
            (_log.c.endpoint, self.endpoint),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.since is not None:
            conditions.append(_log.c.created_at >= self.since)
        if self.until is not None:
            conditions.append(_log.c.created_at < self.until)
        if self.status == "success":
            conditions.append(_log.c.status_code < 400)
        elif self.status == "error":
            conditions.append(_log.c.status_code >= 400)
        elif isinstance(self.status, int):
            conditions.append(_log.c.status_code == self.status)
        if self.min_latency_ms is not None:
            conditions.append(_log.c.latency_ms >= self.min_latency_ms)
        return conditions


def _older_than(created_at: float, seq: int) -> ColumnElement[bool]:
    """Rows after the anchor in newest-first order. The leading ``created_at <=`` is the
    index range both backends seek to (an OR alone makes SQLite scan from the newest)."""
    return and_(
        _log.c.created_at <= created_at,
        or_(_log.c.created_at < created_at, _log.c.seq < seq),
    )


class RequestLogRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def append(self, rows: Sequence[dict[str, Any]]) -> None:
        async with self._db.write() as connection:
            await _insert_log.execute(connection, rows)

    async def page(
        self, where: RequestLogFilter, limit: int, after: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Newest first; ``after`` names the last entry of the previous page (its request
        id, looked up under the same filters: another tenant's id yields an empty page)."""
        conditions = where.conditions()
        async with self._db.connect() as connection:
            if after is not None:
                anchor = (
                    await connection.execute(
                        select(_log.c.created_at, _log.c.seq)
                        .where(_log.c.request_id == after, *conditions)
                        .order_by(_log.c.seq.desc())
                        .limit(1)
                    )
                ).first()
                if anchor is None:
                    return [], False
                conditions.append(_older_than(anchor.created_at, anchor.seq))
            query = (
                select(*_LIST_COLUMNS)
                .where(*conditions)
                .order_by(_log.c.created_at.desc(), _log.c.seq.desc())
                .limit(limit + 1)
            )
            rows = [dict(row) for row in (await connection.execute(query)).mappings().all()]
        return rows[:limit], len(rows) > limit

    async def get(self, request_id: str, key_id: str | None = None) -> dict[str, Any] | None:
        """The newest entry with this request id (only ``key_id``'s when given)."""
        query = select(_log).where(_log.c.request_id == request_id)
        if key_id is not None:
            query = query.where(_log.c.key_id == key_id)
        async with self._db.connect() as connection:
            row = (
                (await connection.execute(query.order_by(_log.c.seq.desc()).limit(1)))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    async def purge(self, before: float) -> int:
        """Delete the entries created before ``before``, a chunk per transaction."""
        deleted = 0
        while True:
            oldest = (
                select(_log.c.seq)
                .where(_log.c.created_at < before)
                .order_by(_log.c.created_at)
                .limit(PURGE_CHUNK)
            )
            async with self._db.write() as connection:
                result = await connection.execute(delete(_log).where(_log.c.seq.in_(oldest)))
            count = result.rowcount or 0
            deleted += count
            if count < PURGE_CHUNK:
                return deleted

    # Content (bodies) for privacy: rows stay (metadata), bodies go --------------------

    async def clear_bodies(
        self,
        *,
        user_id: str | None = None,
        key_id: str | None = None,
        team_id: str | None = None,
        before: float | None = None,
    ) -> int:
        """Null the bodies of the matching entries that still have some; how many."""
        conditions = [or_(_log.c.request_body.is_not(None), _log.c.response_body.is_not(None))]
        if user_id is not None:
            conditions.append(_log.c.user_id == user_id)
        if key_id is not None:
            conditions.append(_log.c.key_id == key_id)
        if team_id is not None:
            conditions.append(_log.c.team_id == team_id)
        if before is not None:
            conditions.append(_log.c.created_at < before)
        async with self._db.write() as connection:
            result = await connection.execute(
                update(_log).where(*conditions).values(request_body=None, response_body=None)
            )
        return result.rowcount or 0

    async def body_owners(self) -> list[tuple[str | None, str | None]]:
        """Every (key id, team id) with entries that still hold bodies."""
        held = or_(_log.c.request_body.is_not(None), _log.c.response_body.is_not(None))
        async with self._db.connect() as connection:
            rows = await connection.execute(
                select(_log.c.key_id, _log.c.team_id).where(held).distinct()
            )
            return [(row.key_id, row.team_id) for row in rows]
