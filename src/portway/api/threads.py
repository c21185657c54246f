"""`/v1/threads/...`: threads, messages, runs (with streaming) and run steps. HTTP only."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request
from portway.api.deps import principal_of, services_of
from portway.api.render import EventStreamResponse, JSONResponse
from portway.api.wire import parse_json, parse_model, read_body
from portway.assistants.render import (
    deleted_object,
    message_object,
    run_object,
    step_object,
    thread_object,
)
from portway.assistants.runs import RunService, created_events, resumed_events
from portway.protocol.assistants import (
    CreateMessageRequest,
    CreateRunRequest,
    CreateThreadAndRunRequest,
    CreateThreadRequest,
    ModifyMessageRequest,
    ModifyRunRequest,
    ModifyThreadRequest,
    SubmitToolOutputsRunRequest,
)
from portway.protocol.events import ServerSentEvent
from portway.protocol.lists import list_object

router = APIRouter()


def _runs(request: Request) -> RunService:
    return services_of(request).assistants.runs


def _include(request: Request) -> list[str]:
    """``include[]`` (the SDK's spelling) or repeated ``include``."""
    query = request.query_params
    return [*query.getlist("include[]"), *query.getlist("include")]


def _poll_hint(request: Request, status: str) -> dict[str, str]:
    """Tell the SDK's polling helpers how soon to ask again while the run is busy."""
    if status in ("queued", "in_progress", "cancelling"):
        config = services_of(request).settings.assistants
        return {"openai-poll-after-ms": str(config.poll_after_ms)}
    return {}


async def _event_stream(events: AsyncIterator[ServerSentEvent]) -> Response:
    first = await anext(events)
    return EventStreamResponse(first, events, done_marker=False, error_event="error")


# Threads -----------------------------------------------------------------------------


@router.post("/v1/threads")
async def create_thread(request: Request) -> Response:
    raw = await request.body()
    body = parse_model(parse_json(raw), CreateThreadRequest) if raw.strip() else None
    services = services_of(request)
    row = await services.assistants.objects.create_thread(principal_of(request), body)
    await services.privacy.track(principal_of(request), "thread", row.id)
    return JSONResponse(thread_object(row))


@router.post("/v1/threads/runs")
async def create_thread_and_run(request: Request) -> Response:
    body = await read_body(request, CreateThreadAndRunRequest)
    runs = _runs(request)
    run, thread = await runs.create_thread_and_run(principal_of(request), body)
    await services_of(request).privacy.track(principal_of(request), "thread", thread.id)
    if body.stream:
        return await _event_stream(runs.stream(run, created_events(run, thread)))
    return JSONResponse(run_object(run), headers=_poll_hint(request, run.status))


@router.get("/v1/threads/{thread_id}")
async def retrieve_thread(request: Request, thread_id: str) -> Response:
    row = await services_of(request).assistants.objects.get_thread(principal_of(request), thread_id)
    return JSONResponse(thread_object(row))


@router.post("/v1/threads/{thread_id}")
async def modify_thread(request: Request, thread_id: str) -> Response:
    body = await read_body(request, ModifyThreadRequest)
    row = await services_of(request).assistants.objects.modify_thread(
        principal_of(request), thread_id, body
    )
    return JSONResponse(thread_object(row))


@router.delete("/v1/threads/{thread_id}")
async def delete_thread(request: Request, thread_id: str) -> Response:
    await services_of(request).assistants.objects.delete_thread(principal_of(request), thread_id)
    return JSONResponse(deleted_object(thread_id, "thread"))


# Messages ----------------------------------------------------------------------------


@router.post("/v1/threads/{thread_id}/messages")
async def create_message(request: Request, thread_id: str) -> Response:
    body = await read_body(request, CreateMessageRequest)
    row = await services_of(request).assistants.objects.create_message(
        principal_of(request), thread_id, body
    )
    return JSONResponse(message_object(row))


@router.get("/v1/threads/{thread_id}/messages")
async def list_messages(request: Request, thread_id: str) -> Response:
    page = await services_of(request).assistants.objects.list_messages(
        principal_of(request),
        thread_id,
        page_request(request),
        request.query_params.get("run_id") or None,
    )
    return JSONResponse(list_object([message_object(r) for r in page.items], page.has_more))


@router.get("/v1/threads/{thread_id}/messages/{message_id}")
async def retrieve_message(request: Request, thread_id: str, message_id: str) -> Response:
    row = await services_of(request).assistants.objects.get_message(
        principal_of(request), thread_id, message_id
    )
    return JSONResponse(message_object(row))


@router.post("/v1/threads/{thread_id}/messages/{message_id}")
async def modify_message(request: Request, thread_id: str, message_id: str) -> Response:
    body = await read_body(request, ModifyMessageRequest)
    row = await services_of(request).assistants.objects.modify_message(
        principal_of(request), thread_id, message_id, body
    )
    return JSONResponse(message_object(row))


@router.delete("/v1/threads/{thread_id}/messages/{message_id}")
async def delete_message(request: Request, thread_id: str, message_id: str) -> Response:
    await services_of(request).assistants.objects.delete_message(
        principal_of(request), thread_id, message_id
    )
    return JSONResponse(deleted_object(message_id, "thread.message"))


# Runs --------------------------------------------------------------------------------


@router.post("/v1/threads/{thread_id}/runs")
async def create_run(request: Request, thread_id: str) -> Response:
    body = await read_body(request, CreateRunRequest)
    runs = _runs(request)
    run = await runs.create(principal_of(request), thread_id, body)
    if body.stream:
        return await _event_stream(runs.stream(run, created_events(run)))
    return JSONResponse(run_object(run), headers=_poll_hint(request, run.status))


@router.get("/v1/threads/{thread_id}/runs")
async def list_runs(request: Request, thread_id: str) -> Response:
    page = await _runs(request).list(principal_of(request), thread_id, page_request(request))
    return JSONResponse(list_object([run_object(r) for r in page.items], page.has_more))


@router.get("/v1/threads/{thread_id}/runs/{run_id}")
async def retrieve_run(request: Request, thread_id: str, run_id: str) -> Response:
    run = await _runs(request).get(principal_of(request), thread_id, run_id)
    return JSONResponse(run_object(run), headers=_poll_hint(request, run.status))


@router.post("/v1/threads/{thread_id}/runs/{run_id}")
async def modify_run(request: Request, thread_id: str, run_id: str) -> Response:
    body = await read_body(request, ModifyRunRequest)
    run = await _runs(request).modify(principal_of(request), thread_id, run_id, body.metadata)
    return JSONResponse(run_object(run))


@router.post("/v1/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(request: Request, thread_id: str, run_id: str) -> Response:
    run = await _runs(request).cancel(principal_of(request), thread_id, run_id)
    return JSONResponse(run_object(run), headers=_poll_hint(request, run.status))


@router.post("/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(request: Request, thread_id: str, run_id: str) -> Response:
    body = await read_body(request, SubmitToolOutputsRunRequest)
    runs = _runs(request)
    run, step = await runs.submit_tool_outputs(principal_of(request), thread_id, run_id, body)
    if body.stream:
        return await _event_stream(runs.stream(run, resumed_events(run, step)))
    return JSONResponse(run_object(run), headers=_poll_hint(request, run.status))


# Run steps ---------------------------------------------------------------------------


@router.get("/v1/threads/{thread_id}/runs/{run_id}/steps")
async def list_run_steps(request: Request, thread_id: str, run_id: str) -> Response:
    page = await _runs(request).list_steps(
        principal_of(request), thread_id, run_id, page_request(request)
    )
    include = _include(request)
    return JSONResponse(list_object([step_object(r, include) for r in page.items], page.has_more))


@router.get("/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def retrieve_run_step(
    request: Request, thread_id: str, run_id: str, step_id: str
) -> Response:
    step = await _runs(request).get_step(principal_of(request), thread_id, run_id, step_id)
    return JSONResponse(step_object(step, _include(request)))
