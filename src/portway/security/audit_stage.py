"""``AuditStage``: one audit record per model call (metadata only) when ``audit.requests``.

The outermost stage, so the record carries the call's final status. It queues the
record on the ``AuditLog`` (no database round trip on the request path).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

from portway.errors import PortwayError
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelResult,
    Stage,
    StreamHandler,
)
from portway.security.audit_log import AuditLog

CLIENT_CLOSED = 499


def _status(error: BaseException | None) -> int:
    if error is None:
        return 200
    if isinstance(error, PortwayError):
        return error.status_code
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return CLIENT_CLOSED
    return 500


class AuditStage(Stage):
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    @property
    def active(self) -> bool:
        return self._audit.records_requests  # the audit settings are fixed at start-up

    def _record(self, ctx: CallContext, error: BaseException | None, streamed: bool) -> None:
        principal = ctx.principal
        self._audit.request(
            principal,
            ctx.model,
            {
                "request_id": ctx.request_id,
                "user": principal.user,
                "team": principal.team,
                "model": ctx.model,
                "deployment": ctx.deployment,
                "endpoint": ctx.endpoint,
                "stream": streamed,
                "status": _status(error),
                "guardrails": list(ctx.guardrails_fired),
            },
        )

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        if not self._audit.records_requests:
            return await call_next(ctx)
        error: BaseException | None = None
        try:
            return await call_next(ctx)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._record(ctx, error, streamed=False)

    def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        if not self._audit.records_requests:
            return call_next(ctx)
        return self._stream(ctx, call_next)

    async def _stream(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ModelChunk]:
        error: BaseException | None = None
        try:
            async with aclosing(call_next(ctx)) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._record(ctx, error, streamed=True)
