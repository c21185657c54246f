"""`/v1/responses`: create (whole or streamed), retrieve, delete, input items, input tokens,
compact.
HTTP only; ``ResponseService`` decides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request
from portway.api.deps import call_context, principal_of, services_of
from portway.api.disconnect import ClientGone, unless_disconnected
from portway.api.render import SSE_HEADERS, EventStreamResponse, JSONResponse
from portway.api.wire import parse_json, parse_model, read_body
from portway.errors import InvalidRequestError, NotFoundError, UpstreamError
from portway.protocol.events import ServerSentEvent
from portway.protocol.lists import list_object
from portway.protocol.native_responses import NativeResponseRequest
from portway.protocol.responses import (
    INCLUDABLE,
    CompactRequest,
    CreateResponseRequest,
    InputTokensRequest,
)
from portway.responses.native import NativeResponses, upstream_hint
from portway.responses.render import deleted_object
from portway.responses.service import ResponseService

router = APIRouter()
T = TypeVar("T")


def _service(request: Request) -> ResponseService:
    return services_of(request).responses.responses


@router.post("/v1/responses")
async def create_response(request: Request) -> Response:
    data = parse_json(await request.body())
    body = parse_model(data, CreateResponseRequest)
    native = services_of(request).responses.native
    if native.serves(body.model):
        return await _forward(request, native, NativeResponseRequest.of(data))
    service = _service(request)
    principal = principal_of(request)
    job = await service.prepare(principal, body)
    if body.background:
        queued = await service.enqueue(job)
        if not body.stream:
            return JSONResponse(queued, headers=_poll_hint(request))
        return await _event_stream(await service.resume(principal, job.id, -1))
    if not body.stream:
        created = await service.create(job)
        return JSONResponse(created, headers=job.context_headers)
    return await _event_stream(service.stream(job))


async def _forward(
    request: Request, native: NativeResponses, body: NativeResponseRequest
) -> Response:
    """The create body, as sent, to the model's own Responses API (``responses: native``)."""
    ctx = call_context(request, body)
    if not body.stream:
        try:
            response = await unless_disconnected(request.receive, native.create(ctx))
        except ClientGone:
            return Response(status_code=499)  # nobody reads it: the connection is closed
        return JSONResponse(response, headers=ctx.response_headers)
    events = native.stream(ctx)
    # The first event is pulled before answering: an early failure is a JSON error.
    try:
        first = await anext(events)
    except StopAsyncIteration:
        raise UpstreamError("The model produced an empty stream.") from None
    except BaseException:
        await events.aclose()
        raise
    return EventStreamResponse(
        first, events, headers=ctx.response_headers, done_marker=False, error_event="error"
    )


async def _event_stream(events: AsyncIterator[ServerSentEvent]) -> Response:
    try:
        first = await anext(events)
    except StopAsyncIteration:  # a resumed stream with nothing left to send
        return Response(media_type="text/event-stream", headers=SSE_HEADERS)
    return EventStreamResponse(first, events, done_marker=False, error_event="error")


def _poll_hint(request: Request) -> dict[str, str]:
    """Tell the SDK's polling helpers how soon to ask again."""
    return {"openai-poll-after-ms": str(services_of(request).settings.assistants.poll_after_ms)}


def _starting_after(request: Request) -> int:
    raw = request.query_params.get("starting_after")
    if raw is None:
        return -1
    if not raw.strip().lstrip("-").isdigit():
        raise InvalidRequestError(
            f"Invalid value for 'starting_after': expected an integer, got '{raw}'.",
            param="starting_after",
            code="invalid_value",
        )
    return int(raw)


@router.post("/v1/responses/compact")
async def compact_response(request: Request) -> Response:
    body = await read_body(request, CompactRequest)
    return JSONResponse(await _service(request).compact(principal_of(request), body))


@router.post("/v1/responses/input_tokens")
async def count_input_tokens(request: Request) -> Response:
    body = await read_body(request, InputTokensRequest)
    tokens = await _service(request).input_tokens(principal_of(request), body)
    return JSONResponse({"object": "response.input_tokens", "input_tokens": tokens})


@router.get("/v1/responses/{response_id}")
async def retrieve_response(request: Request, response_id: str) -> Response:
    service, principal = _service(request), principal_of(request)
    if request.query_params.get("stream") in ("true", "1"):
        resumed = service.resume(principal, response_id, _starting_after(request))
        return await _event_stream(await _stored_here(request, resumed))
    found = service.get(principal, response_id, _include(request))
    return JSONResponse(await _stored_here(request, found))


async def _stored_here(request: Request, call: Awaitable[T]) -> T:
    """``call``'s result; a missing response's 404 says where a native one is stored."""
    try:
        return await call
    except NotFoundError as error:
        if services_of(request).responses.native.configured:
            raise upstream_hint(error) from None
        raise


def _include(request: Request) -> list[str]:
    query = request.query_params
    include = [*query.getlist("include[]"), *query.getlist("include")]  # the SDK: include[]
    for value in include:
        if value not in INCLUDABLE:
            raise InvalidRequestError(
                f"Invalid value for 'include': '{value}' is not one of "
                f"{', '.join(sorted(INCLUDABLE))}.",
                param="include",
                code="invalid_value",
            )
    return include


@router.post("/v1/responses/{response_id}/cancel")
async def cancel_response(request: Request, response_id: str) -> Response:
    cancelled = _service(request).cancel(principal_of(request), response_id)
    return JSONResponse(await _stored_here(request, cancelled))


@router.delete("/v1/responses/{response_id}")
async def delete_response(request: Request, response_id: str) -> Response:
    await _stored_here(request, _service(request).delete(principal_of(request), response_id))
    return JSONResponse(deleted_object(response_id, "response"))


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(request: Request, response_id: str) -> Response:
    page = await _stored_here(
        request,
        _service(request).input_items(
            principal_of(request), response_id, page_request(request, before=False)
        ),
    )
    return JSONResponse(list_object([row.item for row in page.items], page.has_more))
