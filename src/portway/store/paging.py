"""Cursor pagination as OpenAI lists do it: ``limit``, ``order``, ``after``, ``before``.

Rows are ordered by (created_at, id); a cursor is the id of an object on the previous page.
An unknown cursor (e.g. a deleted object) yields an empty page rather than an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


def _beyond(created: Any, key: Any, anchor: tuple[float, str], later: bool) -> Any:
    at, anchor_key = anchor
    if later:
        return or_(created > at, and_(created == at, key > anchor_key))
    return or_(created < at, and_(created == at, key < anchor_key))


async def paginate(
    session: AsyncSession,
    query: Select[Any],
    created: InstrumentedAttribute[Any],
    key: InstrumentedAttribute[Any],
    page: PageRequest,
) -> tuple[list[Any], bool]:
    """Entities of ``query`` (a ``select(Row)`` already filtered by tenant etc.) for one
    page, and whether more follow."""
    descending = page.order == "desc"
    for cursor, forward in ((page.after, True), (page.before, False)):
        if cursor is None:
            continue
        anchor_query = query.with_only_columns(created, key).where(key == cursor)
        anchor = (await session.execute(anchor_query)).first()
        if anchor is None:
            return [], False
        # "after" continues in list order; "before" goes back against it.
        later = forward != descending
        query = query.where(_beyond(created, key, (anchor[0], anchor[1]), later))
    backwards = page.before is not None and page.after is None
    ascending = not descending if not backwards else descending
    ordering = (created.asc(), key.asc()) if ascending else (created.desc(), key.desc())
    result = await session.execute(query.order_by(*ordering).limit(page.limit + 1))
    rows = list(result.scalars().all())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()
    return rows, has_more
