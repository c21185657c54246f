"""Cursor pagination as OpenAI's list endpoints do it: ``limit``, ``order``, ``after``, ``before``.

Every listing walks a unique sort key with keyset comparisons (each page is one index
range scan, however deep): the insertion counter ``seq`` where objects must keep their
exact creation order (assistants, threads, messages, runs and steps: several messages
share one timestamp), otherwise (``created_at``, id). A cursor is the public id of an
object of the same listing, looked up under the listing's own filters, so another
tenant's id, or a deleted object's, yields an empty page rather than an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

ItemT = TypeVar("ItemT")
Column = InstrumentedAttribute[Any]


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    items: list[ItemT]
    has_more: bool


def _beyond(columns: Sequence[Column], anchor: Sequence[Any], later: bool) -> ColumnElement[bool]:
    """Rows strictly after (``later``) or before ``anchor`` in the order of ``columns``
    (written out as ``a > x OR (a = x AND b > y)``: both backends index it)."""
    first, value = columns[0], anchor[0]
    strictly = first > value if later else first < value
    if len(columns) == 1:
        return strictly
    return or_(strictly, and_(first == value, _beyond(columns[1:], anchor[1:], later)))


async def paginate(
    session: AsyncSession,
    query: Select[Any],
    page: PageRequest,
    *,
    order_by: Sequence[Column],
    cursor: Column,
) -> Page[Any]:
    """One page of the entities of ``query`` (a ``select(Row)`` with the listing's filters,
    such as the tenant), sorted by ``order_by`` (unique together, ascending = oldest first);
    ``after``/``before`` name rows by their ``cursor`` column (the public id)."""
    descending = page.order == "desc"
    for cursor_id, is_after in ((page.after, True), (page.before, False)):
        if cursor_id is None:
            continue
        anchor_query = query.with_only_columns(*order_by).where(cursor == cursor_id)
        anchor = (await session.execute(anchor_query)).first()
        if anchor is None:
            return Page([], False)
        # "after" walks on in list order; "before" walks back against it.
        query = query.where(_beyond(order_by, tuple(anchor), later=is_after != descending))
    # Walking back from a "before" cursor fetches the nearest rows first, then flips them.
    backwards = page.before is not None and page.after is None
    walk_descending = descending != backwards
    ordering = [column.desc() if walk_descending else column.asc() for column in order_by]
    result = await session.execute(query.order_by(*ordering).limit(page.limit + 1))
    rows = list(result.scalars().all())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()
    return Page(rows, has_more)
