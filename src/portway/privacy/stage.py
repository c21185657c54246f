"""``ZeroRetentionStage``: a zero-retention caller's model calls store nothing anywhere.

Asking a provider to store the exchange (``store: true`` on chat completions, on a
Responses call forwarded to its upstream) is refused with 400 ``zero_retention``; a
forwarded Responses call without ``store`` is sent with ``store: false`` (OpenAI's
default is to store). The cache stage and the stateful APIs check the same
``principal.retention`` for their part.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace

from portway.errors import InvalidRequestError
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelResult,
    Stage,
    StreamHandler,
)
from portway.protocol.native_responses import NativeResponseRequest

ZERO_RETENTION = "zero_retention"


def zero_retention_error(what: str, param: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(
        f"This API key has zero retention (retention: none): Portway keeps none of its "
        f"content, so {what}.",
        param=param,
        code=ZERO_RETENTION,
    )


class ZeroRetentionStage(Stage):
    def _check(self, ctx: CallContext) -> None:
        if not ctx.principal.retention.zero:
            return
        request = ctx.request
        if isinstance(request, NativeResponseRequest):
            if request.body.get("store") is True:
                raise zero_retention_error("'store' must be false", "store")
            ctx.replace_request(replace(request, body={**request.body, "store": False}))
            return
        if getattr(request, "store", None) is True:
            raise zero_retention_error("'store' must be false", "store")

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        self._check(ctx)
        return await call_next(ctx)

    def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        if not ctx.principal.retention.zero:
            return call_next(ctx)
        return self._checked(ctx, call_next)

    async def _checked(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ModelChunk]:
        self._check(ctx)  # raised where errors of a stream are expected: on iteration
        async with aclosing(call_next(ctx)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                yield chunk
