"""`POST /v1/chat/completions`: HTTP only; the logic lives in the ``Pipeline``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import call_context, services_of
from portway.api.disconnect import ClientGone, unless_disconnected
from portway.api.legacy_functions import (
    as_function_call,
    function_call_chunks,
    needs_mapping,
    to_tools,
    uses_functions,
)
from portway.api.render import EventStreamResponse, JSONResponse
from portway.api.wire import read_body
from portway.errors import UpstreamError
from portway.protocol.chat import ChatCompletionRequest

router = APIRouter()


@router.post("/v1/chat/completions")
async def create_chat_completion(request: Request) -> Response:
    services = services_of(request)
    body = await read_body(request, ChatCompletionRequest)
    legacy = uses_functions(body)  # answered in the deprecated form it was asked in
    if legacy or needs_mapping(body):
        body = to_tools(body)
    ctx = call_context(request, body)
    if not body.stream:
        try:
            completion = await unless_disconnected(request.receive, services.pipeline.complete(ctx))
        except ClientGone:
            return Response(status_code=499)  # nobody reads it: the connection is closed
        if legacy:
            completion = as_function_call(completion)
        return JSONResponse(completion, headers=ctx.response_headers)
    chunks = services.pipeline.stream(ctx)
    if legacy:
        chunks = function_call_chunks(chunks)
    # Pull the first chunk before answering: a failure here is still a JSON error with
    # its status code, and the router may still fail over.
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise UpstreamError("The model produced an empty stream.") from None
    except BaseException:
        await chunks.aclose()
        raise
    return EventStreamResponse(first, chunks, headers=ctx.response_headers)
