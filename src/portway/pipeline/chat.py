"""The chat completions service: the composed pipeline behind `POST /v1/chat/completions`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from portway.pipeline.base import CallContext, Stage, compose
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict


class ChatService:
    """Runs chat calls through the stages composed once at start-up."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self._complete, self._stream = compose(stages)

    async def complete(self, ctx: CallContext) -> ChatCompletionDict:
        return await self._complete(ctx)

    async def stream(self, ctx: CallContext) -> AsyncIterator[ChatCompletionChunkDict]:
        """Chunks for the client: usage is always collected, but only shown when asked."""
        include_usage = ctx.request.include_usage
        async with aclosing(self._stream(ctx)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                if ctx.first_token_at is None:
                    ctx.first_token_at = time.perf_counter()
                if not include_usage:
                    if not chunk["choices"]:
                        continue
                    chunk.pop("usage", None)
                yield chunk
