"""`/v1/assistants`: create, list, retrieve, modify, delete (HTTP only: parse →
``AssistantServing`` → JSON)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.assistants.serving import AssistantServing
from portway.assistants.wire import CreateAssistantRequest, ModifyAssistantRequest

router = APIRouter()


def _serving(request: Request) -> AssistantServing:
    return services_of(request).assistants.serving


@router.post("/v1/assistants")
async def create_assistant(request: Request) -> Response:
    body = await read_body(request, CreateAssistantRequest)
    return JSONResponse(await _serving(request).create(principal_of(request), body))


@router.get("/v1/assistants")
async def list_assistants(request: Request) -> Response:
    page = page_request(request)
    return JSONResponse(await _serving(request).list(principal_of(request), page))


@router.get("/v1/assistants/{assistant_id}")
async def retrieve_assistant(request: Request, assistant_id: str) -> Response:
    return JSONResponse(await _serving(request).retrieve(principal_of(request), assistant_id))


@router.post("/v1/assistants/{assistant_id}")
async def modify_assistant(request: Request, assistant_id: str) -> Response:
    body = await read_body(request, ModifyAssistantRequest)
    assistant = await _serving(request).modify(principal_of(request), assistant_id, body)
    return JSONResponse(assistant)


@router.delete("/v1/assistants/{assistant_id}")
async def delete_assistant(request: Request, assistant_id: str) -> Response:
    return JSONResponse(await _serving(request).delete(principal_of(request), assistant_id))
