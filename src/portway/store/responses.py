"""Repositories for the Responses and Conversations APIs.

Contract: every read a client triggers is scoped by ``tenant``; a row of another tenant
is indistinguishable from a missing one (``None``). A response is saved with its input
items, and the items it adds to its conversation, in one transaction. Deleting a
response or a conversation deletes its items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from portway.store.database import Database
from portway.store.jobs import JobKind, JobQueue, update_returning
from portway.store.models.responses import ConversationRow, ItemRow, ResponseEventRow, ResponseRow
from portway.store.pagination import Page, PageRequest, paginate
from portway.store.privacy import ContentOwner, insert_owner
from portway.store.pseudonyms import drop_pseudonyms


def _values(row: Any) -> dict[str, Any]:
    """An ORM row's column values by attribute name, for a Core insert (the autoincrement
    key, and unset values of columns with a default, left out)."""
    values: dict[str, Any] = {}
    for attribute in inspect(type(row)).column_attrs:
        value = getattr(row, attribute.key)
        if attribute.key == "seq" or (value is None and attribute.columns[0].default is not None):
            continue
        values[attribute.key] = value
    return values


def item_rows(
    tenant: str, owner: str, items: Sequence[dict[str, Any]], now: float
) -> list[ItemRow]:
    """Rows for ``items`` (each with its ``id``) under ``owner``, in order."""
    return [
        ItemRow(id=item["id"], tenant=tenant, owner=owner, created_at=now, item=item)
        for item in items
    ]


# Background responses (the others are never queued). A renewal answers only the ones
# their worker still holds in progress: any other (cancelled, deleted, finished, taken
# over) is stopped, nothing written. None is ``due_to_expire``: a background response
# never waits on its client.
BACKGROUND = JobKind(
    waiting=("queued",),
    held=("in_progress",),
    scope=(ResponseRow.background.is_(True),),
    renew_answers_held_only=True,
)


class ResponseStore(JobQueue[ResponseRow]):
    """Responses, conversations and their items; background responses are jobs
    (``JobQueue``)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database, ResponseRow, BACKGROUND)

    async def _handed_back(self, session: AsyncSession, job_id: str) -> None:
        """Its events start over."""
        await session.execute(
            delete(ResponseEventRow).where(ResponseEventRow.response_id == job_id)
        )

    # Responses -----------------------------------------------------------------------

    async def save_response(
        self,
        row: ResponseRow,
        input_items: Sequence[ItemRow],
        conversation_items: Sequence[ItemRow] = (),
        owner: ContentOwner | None = None,
    ) -> None:
        """A new response, its input items and what it appends to its conversation (Core
        inserts in one transaction: this is on every stored response's path), and whom
        it is stored for (retention and user deletion find it by that)."""
        items = [*input_items, *conversation_items]
        async with self._db.write() as connection:
            await connection.execute(insert(ResponseRow), [_values(row)])
            if owner is not None:
                await insert_owner(connection, owner)
            if items:
                await connection.execute(insert(ItemRow), [_values(item) for item in items])

    async def get_response(self, tenant: str, response_id: str) -> ResponseRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(ResponseRow).where(
                    ResponseRow.id == response_id, ResponseRow.tenant == tenant
                )
            )
            return found.scalar_one_or_none()

    async def get_by_id(self, response_id: str) -> ResponseRow | None:
        """Any tenant's response (for the workers, never for a client's read)."""
        async with self._db.session() as session:
            found = await session.execute(select(ResponseRow).where(ResponseRow.id == response_id))
            return found.scalar_one_or_none()

    async def update_response(
        self,
        response_id: str,
        changes: dict[str, Any],
        *,
        statuses: Sequence[str] | None = None,
        owner: str | None = None,
        conversation_items: Sequence[ItemRow] = (),
    ) -> ResponseRow | None:
        """Apply ``changes`` when the response is in one of ``statuses`` (any when None) and
        held by ``owner`` (when given); the updated row, or None (compare and set)."""
        conditions = [ResponseRow.id == response_id]
        if statuses is not None:
            conditions.append(ResponseRow.status.in_(statuses))
        if owner is not None:
            conditions.append(ResponseRow.owner == owner)
        async with self._db.session() as session:
            row = await update_returning(session, ResponseRow, conditions, changes)
            if row is not None:
                session.add_all(conversation_items)
            return row

    async def delete_response(self, tenant: str, response_id: str) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                delete(ResponseRow).where(
                    ResponseRow.id == response_id, ResponseRow.tenant == tenant
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            await session.execute(delete(ItemRow).where(ItemRow.owner == response_id))
            await session.execute(
                delete(ResponseEventRow).where(ResponseEventRow.response_id == response_id)
            )
            await session.execute(drop_pseudonyms(tenant, response_id))
            return True

    # Background work: events (claims and leases are ``JobQueue``'s) -----------------

    async def append_events(self, response_id: str, events: Sequence[dict[str, Any]]) -> None:
        async with self._db.session() as session:
            session.add_all(
                [
                    ResponseEventRow(
                        response_id=response_id, number=event["sequence_number"], event=event
                    )
                    for event in events
                ]
            )

    async def events_after(self, response_id: str, after: int) -> list[dict[str, Any]]:
        async with self._db.session() as session:
            found = await session.execute(
                select(ResponseEventRow.event)
                .where(ResponseEventRow.response_id == response_id, ResponseEventRow.number > after)
                .order_by(ResponseEventRow.number)
            )
            return list(found.scalars().all())

    # Items (of a response's input or of a conversation) -------------------------------

    async def list_items(self, tenant: str, owner: str, page: PageRequest) -> Page[ItemRow]:
        async with self._db.session() as session:
            query = select(ItemRow).where(ItemRow.owner == owner, ItemRow.tenant == tenant)
            return await paginate(session, query, page, order_by=(ItemRow.seq,), cursor=ItemRow.id)

    async def items_of(self, owner: str) -> list[dict[str, Any]]:
        """Every item of ``owner``, oldest first (the caller checked the owner's tenant)."""
        async with self._db.session() as session:
            found = await session.execute(
                select(ItemRow.item).where(ItemRow.owner == owner).order_by(ItemRow.seq)
            )
            return list(found.scalars().all())

    async def get_item(self, tenant: str, owner: str, item_id: str) -> ItemRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(ItemRow).where(
                    ItemRow.owner == owner, ItemRow.tenant == tenant, ItemRow.id == item_id
                )
            )
            return found.scalars().first()

    async def add_items(self, rows: Sequence[ItemRow]) -> None:
        async with self._db.session() as session:
            session.add_all(rows)

    async def delete_item(self, tenant: str, owner: str, item_id: str) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                delete(ItemRow).where(
                    ItemRow.owner == owner, ItemRow.tenant == tenant, ItemRow.id == item_id
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # Conversations -------------------------------------------------------------------

    async def create_conversation(self, row: ConversationRow, items: Sequence[ItemRow]) -> None:
        async with self._db.session() as session:
            session.add(row)
            session.add_all(items)

    async def get_conversation(self, tenant: str, conversation_id: str) -> ConversationRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(ConversationRow).where(
                    ConversationRow.id == conversation_id, ConversationRow.tenant == tenant
                )
            )
            return found.scalar_one_or_none()

    async def update_conversation(
        self, tenant: str, conversation_id: str, changes: dict[str, Any]
    ) -> ConversationRow | None:
        async with self._db.session() as session:
            return await update_returning(
                session,
                ConversationRow,
                [ConversationRow.id == conversation_id, ConversationRow.tenant == tenant],
                changes,
            )

    async def delete_conversation(self, tenant: str, conversation_id: str) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                delete(ConversationRow).where(
                    ConversationRow.id == conversation_id, ConversationRow.tenant == tenant
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            await session.execute(delete(ItemRow).where(ItemRow.owner == conversation_id))
            await session.execute(drop_pseudonyms(tenant, conversation_id))
            return True
