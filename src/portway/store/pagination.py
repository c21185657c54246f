"""Cursor pagination as OpenAI's list endpoints do it: ``limit``, ``order``, ``after``, ``before``.

Rows are walked by their insertion order (an integer ``seq`` column); a cursor is the
public ``id`` of a row of the same listing. An unknown cursor yields an empty page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

RowT = TypeVar("RowT")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[RowT]):
    items: list[RowT]
    has_more: bool


async def paginate(
    session: AsyncSession,
    row_type: Any,
    conditions: Sequence[ColumnElement[bool]],
    page: PageRequest,
) -> Page[Any]:
    """One page of ``row_type`` rows matching ``conditions`` (``row_type`` has ``seq``, ``id``)."""
    seq = row_type.seq
    descending = page.order == "desc"
    statement = select(row_type).where(*conditions)
    for cursor, is_after in ((page.after, True), (page.before, False)):
        if cursor is None:
            continue
        found = await session.execute(select(seq).where(row_type.id == cursor, *conditions))
        cursor_seq = found.scalar_one_or_none()
        if cursor_seq is None:
            return Page([], False)
        # "after" walks on in list order; "before" walks back towards the start.
        onwards = descending == is_after
        statement = statement.where(seq < cursor_seq if onwards else seq > cursor_seq)
    # Walking backwards from a "before" cursor fetches the nearest rows first, then flips them.
    walk_descending = descending != (page.before is not None and page.after is None)
    statement = statement.order_by(seq.desc() if walk_descending else seq.asc())
    rows = list((await session.execute(statement.limit(page.limit + 1))).scalars())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if walk_descending != descending:
        rows.reverse()
    return Page(rows, has_more)
