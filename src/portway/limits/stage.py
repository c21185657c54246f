"""The key rate-limit stage: RPM/TPM per virtual key, with OpenAI's ``x-ratelimit-*`` headers.

Tokens counted at admission are the prompt estimate plus the output cap the client asked
for (``max_tokens``/``max_completion_tokens``, if any); once the call ends the count is
trued up to the real usage (the provider's, else the usage recorder's count). It also
settles the call's queue priority: the key's ``priority``, which an
``x-portway-priority`` header may lower but not raise (admins may set any).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from portway.errors import RateLimitError
from portway.limits.base import Limit, RateLimiter
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelResult,
    Stage,
    StreamHandler,
)

PRIORITY_HEADER = "x-portway-priority"


def _priority(ctx: CallContext) -> int:
    principal = ctx.principal
    raw = ctx.request_headers.get(PRIORITY_HEADER)
    try:
        requested = int(raw) if raw is not None else None
    except ValueError:
        requested = None
    if requested is None:
        return principal.priority
    return requested if principal.is_admin else min(requested, principal.priority)


def _total_tokens(usage: Any) -> int | None:
    if not usage:
        return None
    return int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)


class KeyRateLimitStage(Stage):
    span_name = "limits"

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def _admit(self, ctx: CallContext) -> tuple[Limit, int] | None:
        """Admit or raise 429; returns what to true up later (None: nothing to do)."""
        ctx.priority = _priority(ctx)
        principal = ctx.principal
        if principal.rpm is None and principal.tpm is None:
            return None
        limit = Limit(principal.rpm, principal.tpm)
        tokens = 0
        if principal.tpm is not None:
            tokens = await ctx.prompt_tokens() + (ctx.request.max_output_tokens or 0)
        decision = await self._limiter.acquire(f"key:{principal.key_id}", limit, tokens)
        headers = decision.headers()
        ctx.response_headers.update(headers)
        if not decision.allowed:
            kind = "requests" if principal.rpm is not None else "tokens"
            if principal.tpm is not None and decision.remaining_tokens == 0:
                kind = "tokens"
            raise RateLimitError(
                f"Rate limit reached for {kind} on this API key "
                f"(limit: {limit.requests if kind == 'requests' else limit.tokens} per minute).",
                retry_after=decision.retry_after if decision.retry_after != float("inf") else 60,
                headers=dict(headers),
            )
        return (limit, tokens) if principal.tpm is not None else None

    async def _true_up(self, ctx: CallContext, admitted: tuple[Limit, int] | None) -> None:
        """Correct the key's token count to the real usage, now or once it is counted."""
        if admitted is None:
            return
        limit, tokens = admitted
        key = f"key:{ctx.principal.key_id}"
        actual = _total_tokens(ctx.usage)
        if actual is not None:
            if actual != tokens:
                await self._limiter.adjust(key, limit, actual - tokens)
            return

        async def counted(prompt: int, completion: int) -> None:
            if prompt + completion != tokens:
                await self._limiter.adjust(key, limit, prompt + completion - tokens)

        ctx.usage_listeners.append(counted)

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        admitted = await self._admit(ctx)
        try:
            return await call_next(ctx)
        finally:
            await self._true_up(ctx, admitted)

    def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        principal = ctx.principal
        if principal.rpm is None and principal.tpm is None:
            ctx.priority = _priority(ctx)
            return call_next(ctx)  # nothing to count: no extra generator layer
        return self._limited_stream(ctx, call_next)

    async def _limited_stream(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ModelChunk]:
        admitted = await self._admit(ctx)
        try:
            async for chunk in call_next(ctx):
                yield chunk
        finally:
            await self._true_up(ctx, admitted)
