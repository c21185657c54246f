"""The one door to every model: the composed pipeline behind the HTTP endpoints and
Portway's own calls (``pipeline.client``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, cast

from portway.observability.trace import GENAI_OPERATIONS, RequestTrace
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    Operation,
    PromptCounter,
    Stage,
    StreamHandler,
    compose,
)
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict
from portway.protocol.completions import CompletionDict
from portway.protocol.embeddings import EmbeddingResponseDict


class Pipeline:
    """Runs model calls through the stages composed once at start-up.

    It is assembled after it is made: stages that make model calls of their own (the
    router's classifier, the cache's embedder) hold a client of this very pipeline. Every
    call entering it gets the pipeline's one prompt counter.
    """

    def __init__(self) -> None:
        self._complete: CompleteHandler | None = None
        self._embed: CompleteHandler | None = None
        self._completion: CompleteHandler | None = None
        self._response: CompleteHandler | None = None
        self._streams: Mapping[Operation, StreamHandler] = {}
        self._count_prompt: PromptCounter | None = None

    @classmethod
    def of(cls, stages: Sequence[Stage], count_prompt: PromptCounter) -> Pipeline:
        """A pipeline assembled at once (no stage in it calls models of its own)."""
        pipeline = cls()
        pipeline.assemble(stages, count_prompt)
        return pipeline

    def assemble(self, stages: Sequence[Stage], count_prompt: PromptCounter) -> None:
        if self._complete is not None:
            raise RuntimeError("the pipeline is assembled once, at start-up")
        self._count_prompt = count_prompt
        handlers = compose(stages)
        self._complete = handlers.complete["chat"]
        self._embed = handlers.complete["embed"]
        self._completion = handlers.complete["completion"]
        self._response = handlers.complete["response"]
        self._streams = handlers.stream

    async def complete(self, ctx: CallContext) -> ChatCompletionDict:
        assert self._complete is not None, "Pipeline used before assemble()"
        ctx.count_prompt = self._count_prompt  # type: ignore[assignment]
        return cast(ChatCompletionDict, await _traced(self._complete, ctx))

    async def embed(self, ctx: CallContext) -> EmbeddingResponseDict:
        assert self._embed is not None, "Pipeline used before assemble()"
        ctx.count_prompt = self._count_prompt  # type: ignore[assignment]
        return cast(EmbeddingResponseDict, await _traced(self._embed, ctx))

    async def completion(self, ctx: CallContext) -> CompletionDict:
        """A legacy text completion (``/v1/completions``), answered whole."""
        assert self._completion is not None, "Pipeline used before assemble()"
        ctx.count_prompt = self._count_prompt  # type: ignore[assignment]
        return cast(CompletionDict, await _traced(self._completion, ctx))

    async def respond(self, ctx: CallContext) -> dict[str, Any]:
        """A ``/v1/responses`` create forwarded to a native upstream: its Response object."""
        assert self._response is not None, "Pipeline used before assemble()"
        ctx.count_prompt = self._count_prompt  # type: ignore[assignment]
        return cast(dict[str, Any], await _traced(self._response, ctx))

    def stream_response(self, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """A native response's stream events, as the upstream sent them (usage included)."""
        return cast(AsyncIterator[dict[str, Any]], self.stream_chunks(ctx))

    def stream(self, ctx: CallContext) -> AsyncIterator[ChatCompletionChunkDict]:
        """A streamed chat call's chunks for the client (see ``stream_chunks``)."""
        return cast(AsyncIterator[ChatCompletionChunkDict], self.stream_chunks(ctx))

    def stream_completion(self, ctx: CallContext) -> AsyncIterator[CompletionDict]:
        """A streamed text completion's chunks for the client (see ``stream_chunks``)."""
        return cast(AsyncIterator[CompletionDict], self.stream_chunks(ctx))

    async def stream_chunks(self, ctx: CallContext) -> AsyncIterator[ModelChunk]:
        """Chunks for the client: usage is always collected, but only shown when asked."""
        assert self._streams, "Pipeline used before assemble()"
        ctx.count_prompt = self._count_prompt  # type: ignore[assignment]
        include_usage = ctx.request.include_usage  # type: ignore[union-attr]
        trace = ctx.trace
        if trace is not None:
            ctx.call_span = _open_call(trace, ctx, stream=True)
        failure: BaseException | None = None
        try:
            async with aclosing(self._streams[ctx.operation](ctx)) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    if ctx.first_token_at is None:
                        ctx.first_token_at = time.perf_counter()
                    if not include_usage:
                        if not chunk["choices"]:
                            continue
                        chunk.pop("usage", None)
                    yield chunk
        except BaseException as error:
            failure = error
            raise
        finally:
            if trace is not None:
                trace.close(ctx.call_span, failure)


def _open_call(trace: RequestTrace, ctx: CallContext, *, stream: bool) -> int:
    """The span of one pipeline call (named as the GenAI conventions name it)."""
    operation = GENAI_OPERATIONS[ctx.operation]
    return trace.open(
        f"{operation} {ctx.model}",
        "call",
        {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": ctx.model,
            "portway.endpoint": ctx.endpoint,
            "portway.stream": stream,
        },
    )


async def _traced(handler: CompleteHandler, ctx: CallContext) -> Any:
    """A whole call, in a span of its own when it serves an HTTP request."""
    trace = ctx.trace
    if trace is None:
        return await handler(ctx)
    ctx.call_span = _open_call(trace, ctx, stream=False)
    try:
        result = await handler(ctx)
    except BaseException as error:
        trace.close(ctx.call_span, error)
        raise
    trace.close(ctx.call_span)
    return result
