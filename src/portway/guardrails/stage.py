"""The guardrail stage: input checks before the cache and the router, output checks after.

It sits inside the accounting stages and outside the cache, so what is cached and what
is sent upstream is the redacted request, and every operation through the pipeline
(chat whole and streamed, embeddings; hence Assistants runs, Responses and batches)
passes it. Each decision is counted (``portway_guardrail_actions``) and logged without
the text it concerns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, cast

from portway.errors import InvalidRequestError
from portway.guardrails.base import Action, GuardSession
from portway.guardrails.outputs import StreamGuard, guard_result
from portway.guardrails.policy import ActivePolicy, Policies, RequestedPolicies
from portway.guardrails.requests import (
    guard_chat,
    guard_completion_request,
    guard_embedding,
    text_size,
)
from portway.guardrails.vault import PseudonymVault
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelResult,
    Stage,
    StreamHandler,
)
from portway.protocol.chat import ChatCompletionDict
from portway.protocol.completions import CompletionDict, CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest
from portway.protocol.native_responses import NativeResponseRequest

logger = logging.getLogger(__name__)

ActionObserver = Callable[[Action], None]
# Above this many characters the input checks run in a worker thread, off the event loop
# (the injection classifier costs about 1.5 ms of CPU per KB).
OFFLOAD_CHARS = 4_096


class GuardrailStage(Stage):
    def __init__(
        self, policies: Policies, observe: ActionObserver, vault: PseudonymVault | None = None
    ) -> None:
        self._policies = policies
        self._observe = observe
        self._vault = vault

    async def _session(self, ctx: CallContext, policies: tuple[ActivePolicy, ...]) -> GuardSession:
        """A new session, or the stored conversation's one continued."""
        if self._vault is None or ctx.pseudonyms_from is None or not _pseudonymizes(policies):
            return GuardSession()
        saved = await self._vault.load(ctx.principal.tenant, ctx.pseudonyms_from)
        return GuardSession.resumed(saved) if saved else GuardSession()

    async def _keep(
        self, ctx: CallContext, policies: tuple[ActivePolicy, ...], session: GuardSession
    ) -> None:
        """Seal the conversation's map after the input checks (outputs add nothing to it)."""
        if self._vault is None or ctx.pseudonyms_to is None or not _pseudonymizes(policies):
            return
        saved = session.saved()
        unchanged = (
            ctx.pseudonyms_to == ctx.pseudonyms_from
            and len(saved["entries"]) == session.resumed_from
        )
        if saved["entries"] and not unchanged:  # no write when the turn added no value
            await self._vault.save(ctx.principal.tenant, ctx.pseudonyms_to, saved)

    def _policies_for(self, ctx: CallContext) -> tuple[ActivePolicy, ...]:
        requested = RequestedPolicies.of(ctx.request_headers, ctx.request)
        return self._policies.for_call(ctx.model, ctx.principal, requested)

    def _report(self, ctx: CallContext, session: GuardSession) -> None:
        for action in session.actions:
            self._observe(action)
            if ctx.trace is not None:
                ctx.trace.guardrail(action.guardrail, action.action)
            ctx.guardrails_fired.append(f"{action.guardrail}:{action.action}")
            logger.info(
                "guardrail %s %s %s in request %s (model %s)",
                action.guardrail,
                action.action,
                ",".join(action.kinds),
                ctx.request_id,
                ctx.model,
            )

    async def _guard_request(
        self, ctx: CallContext, policies: tuple[ActivePolicy, ...], session: GuardSession
    ) -> None:
        request = ctx.request
        if isinstance(request, NativeResponseRequest):
            # Its body and events are the upstream's, not a shape the guardrails read:
            # refused rather than let through unchecked.
            names = ", ".join(sorted({policy.guardrail.name for policy in policies}))
            raise InvalidRequestError(
                f"Guardrails ({names}) apply to the model `{ctx.model}`, and a response "
                "forwarded to its upstream's own Responses API (`responses: native`) cannot "
                "be checked by them.",
                param="model",
                code="guardrails_unsupported",
            )
        guard: Any = guard_chat
        if isinstance(request, EmbeddingRequest):
            guard = guard_embedding
        elif isinstance(request, CompletionRequest):
            guard = guard_completion_request
        if text_size(request) > OFFLOAD_CHARS:
            guarded = await asyncio.to_thread(guard, request, policies, session)
        else:
            guarded = guard(request, policies, session)
        if guarded is not request:  # redacted: what later stages count is what is sent
            ctx.replace_request(guarded)

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        policies = self._policies_for(ctx)
        if not policies:
            return await call_next(ctx)
        session = await self._session(ctx, policies)
        try:
            await self._guard_request(ctx, policies, session)
            await self._keep(ctx, policies, session)
            result = await call_next(ctx)
            if isinstance(ctx.request, EmbeddingRequest):
                return result
            return guard_result(
                cast(ChatCompletionDict | CompletionDict, result), policies, session
            )
        finally:
            self._report(ctx, session)

    def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        policies = self._policies_for(ctx)
        if not policies:
            return call_next(ctx)
        return self._guarded_stream(ctx, call_next, policies)

    async def _guarded_stream(
        self, ctx: CallContext, call_next: StreamHandler, policies: tuple[ActivePolicy, ...]
    ) -> AsyncIterator[ModelChunk]:
        session = await self._session(ctx, policies)
        try:
            await self._guard_request(ctx, policies, session)
            await self._keep(ctx, policies, session)
            guard = StreamGuard(policies, session)
            last: ModelChunk | None = None
            async with aclosing(call_next(ctx)) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    last = chunk
                    yield (guard.chunk(cast(dict[str, Any], chunk)) if guard.active else chunk)
            leftover = (
                guard.leftover(cast(dict[str, Any], last))
                if guard.active and last is not None
                else None
            )
            if leftover is not None:
                yield leftover
        finally:
            self._report(ctx, session)


def _pseudonymizes(policies: tuple[ActivePolicy, ...]) -> bool:
    return any(
        policy.guardrail.reversible and policy.mode == "redact" and policy.on_input
        for policy in policies
    )
