"""`/v1/assistants`: create, list, retrieve, modify, delete (HTTP only; ``ObjectService``
decides)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.assistants.render import assistant_object, deleted_object
from portway.protocol.assistants import CreateAssistantRequest, ModifyAssistantRequest
from portway.protocol.lists import list_object

router = APIRouter()


@router.post("/v1/assistants")
async def create_assistant(request: Request) -> Response:
    body = await read_body(request, CreateAssistantRequest)
    row = await services_of(request).assistants.objects.create_assistant(
        principal_of(request), body
    )
    return JSONResponse(assistant_object(row))


@router.get("/v1/assistants")
async def list_assistants(request: Request) -> Response:
    page = await services_of(request).assistants.objects.list_assistants(
        principal_of(request), page_request(request)
    )
    return JSONResponse(list_object([assistant_object(r) for r in page.items], page.has_more))


@router.get("/v1/assistants/{assistant_id}")
async def retrieve_assistant(request: Request, assistant_id: str) -> Response:
    row = await services_of(request).assistants.objects.get_assistant(
        principal_of(request), assistant_id
    )
    return JSONResponse(assistant_object(row))


@router.post("/v1/assistants/{assistant_id}")
async def modify_assistant(request: Request, assistant_id: str) -> Response:
    body = await read_body(request, ModifyAssistantRequest)
    row = await services_of(request).assistants.objects.modify_assistant(
        principal_of(request), assistant_id, body
    )
    return JSONResponse(assistant_object(row))


@router.delete("/v1/assistants/{assistant_id}")
async def delete_assistant(request: Request, assistant_id: str) -> Response:
    await services_of(request).assistants.objects.delete_assistant(
        principal_of(request), assistant_id
    )
    return JSONResponse(deleted_object(assistant_id, "assistant"))
