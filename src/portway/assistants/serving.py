"""``AssistantServing``: create, list, retrieve, modify and delete assistants.

Contract: every method takes the caller's ``Principal`` and answers with OpenAI's
assistant object; another tenant's assistant is reported as missing (404). A model the
catalog does not serve, or the caller may not use, is ``model_not_found``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from portway.assistants.ids import new_id
from portway.assistants.objects import check_model, dump, dump_all
from portway.assistants.render import assistant_object, deleted_object
from portway.assistants.wire import AssistantObject, CreateAssistantRequest, ModifyAssistantRequest
from portway.errors import NotFoundError
from portway.protocol.assistants import DeletedObject
from portway.protocol.lists import ListObject, list_object
from portway.records import copy_as, field_names
from portway.routing.catalog import ModelCatalog
from portway.security.principal import Principal
from portway.store.assistants import AssistantStore
from portway.store.models.assistants import AssistantRow
from portway.store.pagination import PageRequest


def _column_value(name: str, value: Any) -> tuple[str, Any]:
    """A request field as its ``AssistantRow`` column and stored value."""
    if name == "metadata":
        return "meta", value or {}
    if name == "tools":
        return name, dump_all(value)
    if name in ("tool_resources", "response_format") and isinstance(value, BaseModel):
        return name, dump(value)
    return name, value


def _missing(assistant_id: str) -> NotFoundError:
    return NotFoundError(f"No assistant found with id '{assistant_id}'.")


class AssistantServing:
    def __init__(
        self,
        store: AssistantStore,
        catalog: ModelCatalog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock

    async def create(
        self, principal: Principal, request: CreateAssistantRequest
    ) -> AssistantObject:
        check_model(self._catalog, principal, request.model)
        row = copy_as(
            AssistantRow,
            request,
            id=new_id("asst"),
            tenant=principal.tenant,
            created_at=self._clock(),
            **dict(
                _column_value(name, getattr(request, name))
                for name in ("tools", "tool_resources", "metadata", "response_format")
            ),
        )
        return assistant_object(await self._store.create_assistant(row))

    async def retrieve(self, principal: Principal, assistant_id: str) -> AssistantObject:
        row = await self._store.get_assistant(principal.tenant, assistant_id)
        if row is None:
            raise _missing(assistant_id)
        return assistant_object(row)

    async def list(self, principal: Principal, page: PageRequest) -> ListObject:
        found = await self._store.list_assistants(principal.tenant, page)
        return list_object([assistant_object(row) for row in found.items], found.has_more)

    async def modify(
        self, principal: Principal, assistant_id: str, request: ModifyAssistantRequest
    ) -> AssistantObject:
        changes: dict[str, Any] = {}
        # Declared fields only: an extra field must not reach a column (id, tenant, ...).
        for name in request.model_fields_set & request.model_fields.keys():
            value = getattr(request, name)
            if name == "model":
                if value is None:
                    continue
                check_model(self._catalog, principal, value)
            column, stored = _column_value(name, value)
            if column in field_names(AssistantRow):
                changes[column] = stored
        if not changes:
            return await self.retrieve(principal, assistant_id)
        row = await self._store.update_assistant(principal.tenant, assistant_id, changes)
        if row is None:
            raise _missing(assistant_id)
        return assistant_object(row)

    async def delete(self, principal: Principal, assistant_id: str) -> DeletedObject:
        if not await self._store.delete_assistant(principal.tenant, assistant_id):
            raise _missing(assistant_id)
        return deleted_object(assistant_id, "assistant")
