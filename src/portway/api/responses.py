"""`/v1/responses`: create (whole or streamed), retrieve, delete, input items, input tokens.
HTTP only; ``ResponseService`` decides."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request
from portway.api.deps import principal_of, services_of
from portway.api.render import EventStreamResponse, JSONResponse
from portway.api.wire import read_body
from portway.protocol.lists import list_object
from portway.protocol.responses import CreateResponseRequest, InputTokensRequest
from portway.responses.render import deleted_object
from portway.responses.service import ResponseService

router = APIRouter()


def _service(request: Request) -> ResponseService:
    return services_of(request).responses.responses


@router.post("/v1/responses")
async def create_response(request: Request) -> Response:
    body = await read_body(request, CreateResponseRequest)
    service = _service(request)
    job = await service.prepare(principal_of(request), body)
    if not body.stream:
        return JSONResponse(await service.create(job))
    events = service.stream(job)
    first = await anext(events)
    return EventStreamResponse(first, events, done_marker=False, error_event="error")


@router.post("/v1/responses/input_tokens")
async def count_input_tokens(request: Request) -> Response:
    body = await read_body(request, InputTokensRequest)
    tokens = await _service(request).input_tokens(principal_of(request), body)
    return JSONResponse({"object": "response.input_tokens", "input_tokens": tokens})


@router.get("/v1/responses/{response_id}")
async def retrieve_response(request: Request, response_id: str) -> Response:
    return JSONResponse(await _service(request).get(principal_of(request), response_id))


@router.delete("/v1/responses/{response_id}")
async def delete_response(request: Request, response_id: str) -> Response:
    await _service(request).delete(principal_of(request), response_id)
    return JSONResponse(deleted_object(response_id, "response"))


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(request: Request, response_id: str) -> Response:
    page = await _service(request).input_items(
        principal_of(request), response_id, page_request(request, before=False)
    )
    return JSONResponse(list_object([row.item for row in page.items], page.has_more))
