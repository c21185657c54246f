"""`POST /v1/completions` (legacy text completions): HTTP only; the call goes through the
pipeline as the ``completion`` operation (limits, budget hold, router, ledger)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import call_context, services_of
from portway.api.disconnect import ClientGone, unless_disconnected
from portway.api.render import EventStreamResponse, JSONResponse
from portway.api.wire import read_body
from portway.errors import InvalidRequestError, UpstreamError
from portway.protocol.completions import CompletionRequest

router = APIRouter()


def check_completion(body: CompletionRequest) -> None:
    """What OpenAI refuses across parameters (each field alone was validated already);
    batch lines are held to the same rules."""
    best_of = body.choices_per_prompt if body.best_of is None else body.best_of
    if best_of < body.choices_per_prompt:
        raise InvalidRequestError(
            "`best_of` must be greater than or equal to `n`.", param="best_of"
        )
    if body.stream and best_of > body.choices_per_prompt:
        raise InvalidRequestError(
            "`best_of` above `n` cannot be streamed: the best completions are only known "
            "once all are done.",
            param="best_of",
        )


@router.post("/v1/completions")
async def create_completion(request: Request) -> Response:
    services = services_of(request)
    body = await read_body(request, CompletionRequest)
    check_completion(body)
    ctx = call_context(request, body)
    if not body.stream:
        try:
            completion = await unless_disconnected(
                request.receive, services.pipeline.completion(ctx)
            )
        except ClientGone:
            return Response(status_code=499)  # nobody reads it: the connection is closed
        return JSONResponse(completion, headers=ctx.response_headers)
    chunks = services.pipeline.stream_completion(ctx)
    # The first chunk is pulled before answering, as chat's: an early failure is a JSON error.
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise UpstreamError("The model produced an empty stream.") from None
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise
    return EventStreamResponse(first, chunks, headers=ctx.response_headers)
