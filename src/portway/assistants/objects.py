"""Threads and messages: create, read, modify, delete, scoped to the caller's tenant
(assistants themselves: ``assistants.serving``).

Contract: every method takes the caller's ``Principal``; objects of another tenant are
reported as missing (404). A thread accepts no new message while one of its runs is
active, as OpenAI's API does. Files a message attaches for ``file_search`` are indexed
into the thread's vector store, which the thread gets on first use (``ThreadFileIndex``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from portway.assistants.builtin import ThreadFileIndex
from portway.assistants.ids import new_id
from portway.assistants.lifecycle import text_content
from portway.errors import InvalidRequestError, ModelNotFoundError, NotFoundError
from portway.protocol.assistants import (
    CreateMessageRequest,
    CreateThreadRequest,
    ImageFilePart,
    ModifyMessageRequest,
    ModifyThreadRequest,
    TextInputPart,
    ToolResources,
)
from portway.routing.catalog import ModelCatalog
from portway.security.principal import Principal
from portway.store.assistants import AssistantStore, RunStore
from portway.store.models.assistants import MessageRow, ThreadRow
from portway.store.pagination import Page, PageRequest


def dump(model: BaseModel | None) -> Any:
    """A validated wire model back to its JSON shape (unset optional fields left out)."""
    if model is None:
        return None
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def dump_all(models: Sequence[BaseModel] | None) -> list[Any]:
    return [dump(model) for model in models or ()]


def tool_resources(resources: ToolResources | None) -> dict[str, Any] | None:
    return dump(resources)


def message_content(content: str | Sequence[BaseModel]) -> list[dict[str, Any]]:
    """A message request's content as stored (the response shape of message content)."""
    if isinstance(content, str):
        return text_content(content)
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextInputPart):
            parts.extend(text_content(part.text))
        elif isinstance(part, ImageFilePart):
            parts.append({"type": "image_file", "image_file": dump(part.image_file)})
        else:
            parts.append(dump(part))
    return parts


def file_search_stores(resources: dict[str, Any] | None) -> list[str]:
    """The vector store ids of stored ``tool_resources``."""
    return list(((resources or {}).get("file_search") or {}).get("vector_store_ids") or ())


def with_file_search_store(resources: dict[str, Any] | None, store_id: str) -> dict[str, Any]:
    return {**(resources or {}), "file_search": {"vector_store_ids": [store_id]}}


def attached_for(tool: str, messages: Iterable[MessageRow]) -> list[str]:
    """Files the messages attach for ``tool`` (``file_search`` or ``code_interpreter``)."""
    return list(
        dict.fromkeys(
            attachment["file_id"]
            for message in messages
            for attachment in message.attachments or ()
            if any(t.get("type") == tool for t in attachment.get("tools") or ())
        )
    )


def new_message(
    tenant: str, thread_id: str, request: CreateMessageRequest, now: float
) -> MessageRow:
    return MessageRow(
        id=new_id("msg"),
        tenant=tenant,
        thread_id=thread_id,
        created_at=now,
        status="completed",
        completed_at=now,
        role=request.role,
        content=message_content(request.content),
        attachments=dump_all(request.attachments),
        meta=request.metadata or {},
    )


def check_model(catalog: ModelCatalog, principal: Principal, model: str) -> None:
    """Assistants and runs name only models the catalog serves and the caller may use."""
    if model not in catalog or not principal.may_use(model):
        raise ModelNotFoundError(model)


class ObjectService:
    def __init__(
        self,
        objects: AssistantStore,
        runs: RunStore,
        catalog: ModelCatalog,
        thread_files: ThreadFileIndex,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._objects = objects
        self._runs = runs
        self._catalog = catalog
        self._thread_files = thread_files
        self._clock = clock

    def check_model(self, principal: Principal, model: str) -> None:
        check_model(self._catalog, principal, model)

    # Threads ------------------------------------------------------------------------

    def new_thread(
        self,
        principal: Principal,
        request: CreateThreadRequest | None,
        resources: ToolResources | None = None,
    ) -> tuple[ThreadRow, list[MessageRow]]:
        """A thread and its first messages, not stored yet (nor their attachments indexed);
        ``resources`` replace the request's ``tool_resources`` when given."""
        now = self._clock()
        if resources is None and request is not None:
            resources = request.tool_resources
        thread = ThreadRow(
            id=new_id("thread"),
            tenant=principal.tenant,
            created_at=now,
            tool_resources=tool_resources(resources),
            meta=(request.metadata if request else None) or {},
        )
        messages = [
            new_message(principal.tenant, thread.id, message, now)
            for message in (request.messages if request else None) or ()
        ]
        return thread, messages

    async def create_thread(
        self, principal: Principal, request: CreateThreadRequest | None
    ) -> ThreadRow:
        thread, messages = self.new_thread(principal, request)
        await self.index_attachments(thread, messages, stored=False)
        return await self._objects.create_thread(thread, messages)

    async def index_attachments(
        self, thread: ThreadRow, messages: Sequence[MessageRow], *, stored: bool
    ) -> None:
        """Index the files ``messages`` attach for file_search in the thread's vector store,
        creating it when the thread has none (``stored``: the thread is in the database)."""
        file_ids = attached_for("file_search", messages)
        if not file_ids:
            return
        tenant = thread.tenant
        current = file_search_stores(thread.tool_resources)
        if current:
            await self._thread_files.add_files(tenant, current[0], file_ids)
            return
        created = await self._thread_files.create_store(tenant, thread.id, file_ids)
        if not stored:
            thread.tool_resources = with_file_search_store(thread.tool_resources, created)
            return

        def claim(row: ThreadRow) -> dict[str, Any]:
            if file_search_stores(row.tool_resources):
                return {}
            return {"tool_resources": with_file_search_store(row.tool_resources, created)}

        updated = await self._objects.change_thread(tenant, thread.id, claim)
        winner = file_search_stores(updated.tool_resources) if updated else []
        if winner != [created]:
            # A concurrent request gave the thread a store first: use that one.
            await self._thread_files.drop_store(tenant, created)
            if winner:
                await self._thread_files.add_files(tenant, winner[0], file_ids)

    async def get_thread(self, principal: Principal, thread_id: str) -> ThreadRow:
        row = await self._objects.get_thread(principal.tenant, thread_id)
        if row is None:
            raise _missing("thread", thread_id)
        return row

    async def modify_thread(
        self, principal: Principal, thread_id: str, request: ModifyThreadRequest
    ) -> ThreadRow:
        changes: dict[str, Any] = {}
        if "tool_resources" in request.model_fields_set:
            changes["tool_resources"] = tool_resources(request.tool_resources)
        if "metadata" in request.model_fields_set:
            changes["meta"] = request.metadata or {}
        if not changes:
            return await self.get_thread(principal, thread_id)
        row = await self._objects.update_thread(principal.tenant, thread_id, changes)
        if row is None:
            raise _missing("thread", thread_id)
        return row

    async def delete_thread(self, principal: Principal, thread_id: str) -> None:
        if not await self._objects.delete_thread(principal.tenant, thread_id):
            raise _missing("thread", thread_id)

    # Messages -----------------------------------------------------------------------

    async def ensure_idle(self, thread_id: str) -> None:
        active = await self._runs.active_run(thread_id)
        if active is not None:
            raise InvalidRequestError(
                f"Thread {thread_id} already has an active run {active.id}.",
                code="thread_locked",
            )

    async def create_message(
        self, principal: Principal, thread_id: str, request: CreateMessageRequest
    ) -> MessageRow:
        thread = await self.get_thread(principal, thread_id)
        active = await self._runs.active_run(thread_id)
        if active is not None:
            raise InvalidRequestError(
                f"Can't add messages to {thread_id} while a run {active.id} is active.",
                code="thread_locked",
            )
        message = new_message(principal.tenant, thread_id, request, self._clock())
        await self.index_attachments(thread, [message], stored=True)
        return await self._objects.create_message(message)

    async def get_message(
        self, principal: Principal, thread_id: str, message_id: str
    ) -> MessageRow:
        row = await self._objects.get_message(principal.tenant, thread_id, message_id)
        if row is None:
            raise _missing("message", message_id)
        return row

    async def list_messages(
        self, principal: Principal, thread_id: str, page: PageRequest, run_id: str | None
    ) -> Page[MessageRow]:
        await self.get_thread(principal, thread_id)
        return await self._objects.list_messages(principal.tenant, thread_id, page, run_id)

    async def modify_message(
        self, principal: Principal, thread_id: str, message_id: str, request: ModifyMessageRequest
    ) -> MessageRow:
        if "metadata" not in request.model_fields_set:
            return await self.get_message(principal, thread_id, message_id)
        row = await self._objects.update_message(
            principal.tenant, thread_id, message_id, {"meta": request.metadata or {}}
        )
        if row is None:
            raise _missing("message", message_id)
        return row

    async def delete_message(self, principal: Principal, thread_id: str, message_id: str) -> None:
        if not await self._objects.delete_message(principal.tenant, thread_id, message_id):
            raise _missing("message", message_id)


def _missing(kind: str, object_id: str) -> NotFoundError:
    return NotFoundError(f"No {kind} found with id '{object_id}'.")
