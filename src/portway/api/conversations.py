"""`/v1/conversations`: conversations and their items. HTTP only; ``ConversationService``
decides."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.api.wire import parse_json, parse_model, read_body
from portway.protocol.lists import list_object
from portway.protocol.responses import (
    CreateConversationItemsRequest,
    CreateConversationRequest,
    UpdateConversationRequest,
)
from portway.responses.conversations import ConversationService, conversation_object
from portway.responses.render import deleted_object

router = APIRouter()


def _service(request: Request) -> ConversationService:
    return services_of(request).responses.conversations


@router.post("/v1/conversations")
async def create_conversation(request: Request) -> Response:
    raw = await request.body()
    body = parse_model(parse_json(raw), CreateConversationRequest) if raw.strip() else None
    row = await _service(request).create(principal_of(request), body)
    await services_of(request).privacy.track(principal_of(request), "conversation", row.id)
    return JSONResponse(conversation_object(row))


@router.get("/v1/conversations/{conversation_id}")
async def retrieve_conversation(request: Request, conversation_id: str) -> Response:
    row = await _service(request).get(principal_of(request), conversation_id)
    return JSONResponse(conversation_object(row))


@router.post("/v1/conversations/{conversation_id}")
async def update_conversation(request: Request, conversation_id: str) -> Response:
    body = await read_body(request, UpdateConversationRequest)
    row = await _service(request).update(principal_of(request), conversation_id, body)
    return JSONResponse(conversation_object(row))


@router.delete("/v1/conversations/{conversation_id}")
async def delete_conversation(request: Request, conversation_id: str) -> Response:
    await _service(request).delete(principal_of(request), conversation_id)
    return JSONResponse(deleted_object(conversation_id, "conversation"))


@router.post("/v1/conversations/{conversation_id}/items")
async def create_items(request: Request, conversation_id: str) -> Response:
    body = await read_body(request, CreateConversationItemsRequest)
    items = await _service(request).add_items(principal_of(request), conversation_id, body.items)
    return JSONResponse(
        {
            "object": "list",
            "data": items,
            "first_id": items[0]["id"],
            "last_id": items[-1]["id"],
            "has_more": False,
        }
    )


@router.get("/v1/conversations/{conversation_id}/items")
async def list_items(request: Request, conversation_id: str) -> Response:
    page = await _service(request).list_items(
        principal_of(request), conversation_id, page_request(request, before=False)
    )
    return JSONResponse(list_object([row.item for row in page.items], page.has_more))


@router.get("/v1/conversations/{conversation_id}/items/{item_id}")
async def retrieve_item(request: Request, conversation_id: str, item_id: str) -> Response:
    item = await _service(request).get_item(principal_of(request), conversation_id, item_id)
    return JSONResponse(item)


@router.delete("/v1/conversations/{conversation_id}/items/{item_id}")
async def delete_item(request: Request, conversation_id: str, item_id: str) -> Response:
    row = await _service(request).delete_item(principal_of(request), conversation_id, item_id)
    return JSONResponse(conversation_object(row))
