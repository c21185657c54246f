"""``ConversationService``: conversations and their items, scoped to the caller's tenant.

Contract: a conversation holds items in insertion order; responses made with
``conversation`` read them as context and append their input and output when they
finish. Deleting a conversation deletes its items. Objects of another tenant are
reported as missing (404).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from portway.assistants.ids import new_id
from portway.protocol.responses import (
    CreateConversationRequest,
    InputItem,
    UpdateConversationRequest,
)
from portway.responses.items import stored_item
from portway.responses.service import missing
from portway.security.principal import Principal
from portway.store.models.responses import ConversationRow
from portway.store.pagination import Page, PageRequest
from portway.store.responses import ItemRow, ResponseStore, item_rows


def conversation_object(row: ConversationRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "conversation",
        "created_at": int(row.created_at),
        "metadata": row.meta or {},
    }


class ConversationService:
    def __init__(self, store: ResponseStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def create(
        self, principal: Principal, request: CreateConversationRequest | None
    ) -> ConversationRow:
        now = self._clock()
        row = ConversationRow(
            id=new_id("conv"),
            tenant=principal.tenant,
            created_at=now,
            meta=(request.metadata if request else None) or {},
        )
        items = [stored_item(item) for item in (request.items if request else None) or ()]
        await self._store.create_conversation(row, item_rows(principal.tenant, row.id, items, now))
        return row

    async def get(self, principal: Principal, conversation_id: str) -> ConversationRow:
        row = await self._store.get_conversation(principal.tenant, conversation_id)
        if row is None:
            raise missing("conversation", conversation_id)
        return row

    async def update(
        self, principal: Principal, conversation_id: str, request: UpdateConversationRequest
    ) -> ConversationRow:
        row = await self._store.update_conversation(
            principal.tenant, conversation_id, {"meta": request.metadata}
        )
        if row is None:
            raise missing("conversation", conversation_id)
        return row

    async def delete(self, principal: Principal, conversation_id: str) -> None:
        if not await self._store.delete_conversation(principal.tenant, conversation_id):
            raise missing("conversation", conversation_id)

    # Items ---------------------------------------------------------------------------

    async def add_items(
        self, principal: Principal, conversation_id: str, items: Sequence[InputItem]
    ) -> list[dict[str, Any]]:
        await self.get(principal, conversation_id)
        stored = [stored_item(item) for item in items]
        now = self._clock()
        await self._store.add_items(item_rows(principal.tenant, conversation_id, stored, now))
        return stored

    async def list_items(
        self, principal: Principal, conversation_id: str, page: PageRequest
    ) -> Page[ItemRow]:
        await self.get(principal, conversation_id)
        return await self._store.list_items(principal.tenant, conversation_id, page)

    async def get_item(
        self, principal: Principal, conversation_id: str, item_id: str
    ) -> dict[str, Any]:
        await self.get(principal, conversation_id)
        row = await self._store.get_item(principal.tenant, conversation_id, item_id)
        if row is None:
            raise missing("item", item_id)
        return row.item

    async def delete_item(
        self, principal: Principal, conversation_id: str, item_id: str
    ) -> ConversationRow:
        row = await self.get(principal, conversation_id)
        if not await self._store.delete_item(principal.tenant, conversation_id, item_id):
            raise missing("item", item_id)
        return row
