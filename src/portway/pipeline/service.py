"""The one door to every model: the composed pipeline behind the HTTP endpoints and
Portway's own calls (``pipeline.client``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import cast

from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    Stage,
    StreamHandler,
    compose,
)
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict
from portway.protocol.embeddings import EmbeddingResponseDict


class Pipeline:
    """Runs model calls through the stages composed once at start-up.

    It is assembled after it is made: stages that make model calls of their own (the
    router's classifier, the cache's embedder) hold a client of this very pipeline.
    """

    def __init__(self) -> None:
        self._complete: CompleteHandler | None = None
        self._embed: CompleteHandler | None = None
        self._stream: StreamHandler | None = None

    @classmethod
    def of(cls, stages: Sequence[Stage]) -> Pipeline:
        """A pipeline assembled at once (no stage in it calls models of its own)."""
        pipeline = cls()
        pipeline.assemble(stages)
        return pipeline

    def assemble(self, stages: Sequence[Stage]) -> None:
        if self._complete is not None:
            raise RuntimeError("the pipeline is assembled once, at start-up")
        handlers = compose(stages)
        self._complete = handlers.complete["chat"]
        self._embed = handlers.complete["embed"]
        self._stream = handlers.stream

    async def complete(self, ctx: CallContext) -> ChatCompletionDict:
        assert self._complete is not None, "Pipeline used before assemble()"
        return cast(ChatCompletionDict, await self._complete(ctx))

    async def embed(self, ctx: CallContext) -> EmbeddingResponseDict:
        assert self._embed is not None, "Pipeline used before assemble()"
        return cast(EmbeddingResponseDict, await self._embed(ctx))

    async def stream(self, ctx: CallContext) -> AsyncIterator[ChatCompletionChunkDict]:
        """Chunks for the client: usage is always collected, but only shown when asked."""
        assert self._stream is not None, "Pipeline used before assemble()"
        include_usage = ctx.request.include_usage  # type: ignore[union-attr]
        async with aclosing(self._stream(ctx)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                if ctx.first_token_at is None:
                    ctx.first_token_at = time.perf_counter()
                if not include_usage:
                    if not chunk["choices"]:
                        continue
                    chunk.pop("usage", None)
                yield chunk
