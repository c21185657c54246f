"""The outermost stage: one ledger row per model call (any operation), written whatever the
outcome; the row's ``endpoint`` is the call's (``CallContext.endpoint``).

Its ``finally`` runs for completions, streams (also when the client goes away) and
errors: it takes the provider's usage (or counts the output itself when there is none),
prices it, settles budget reservations and hands the row to the ``LedgerWriter``. With
``durability: journal`` the row is journaled, with ``commit`` committed, before the
response is released.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from portway.accounting.estimate import UsageEstimator
from portway.accounting.leases import BudgetLeases
from portway.accounting.ledger import LedgerWriter, UsageRecord
from portway.accounting.pricing import PricingCatalog
from portway.errors import PortwayError
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelResult,
    Stage,
    StreamHandler,
)

logger = logging.getLogger(__name__)

CACHE_HITS = frozenset({"hit", "semantic-hit"})
CLIENT_CLOSED = 499


def _status_of(error: BaseException) -> tuple[int, str | None]:
    if isinstance(error, PortwayError):
        return error.status_code, error.code
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return CLIENT_CLOSED, "client_closed_request"
    return 500, "internal_error"


def _message_text(completion: ModelResult) -> str:
    """The generated text of a completion (an embeddings result has none)."""
    parts: list[str] = []
    for choice in completion.get("choices", ()):
        parts.append(choice.get("text") or "")  # a text completion's choice
        message: Any = choice.get("message") or {}
        parts.append(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            parts.append(call["function"]["name"] + call["function"]["arguments"])
    return "".join(parts)


def _delta_text(chunk: ModelChunk, into: list[str]) -> None:
    for choice in chunk.get("choices", ()):
        text = choice.get("text")  # a text completion's chunk
        if text:
            into.append(text)
        delta: Any = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            into.append(content)
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            into.append((function.get("name") or "") + (function.get("arguments") or ""))


class UsageRecorder(Stage):
    span_name = "ledger"

    def __init__(
        self,
        writer: LedgerWriter,
        pricing: PricingCatalog,
        estimator: UsageEstimator,
        *,
        budgets: BudgetLeases | None = None,
        record_rows: bool = True,
        observers: Sequence[Callable[[UsageRecord], None]] = (),
    ) -> None:
        self._writer = writer
        self._observers = tuple(observers)
        self._pricing = pricing
        self._estimator = estimator
        self._budgets = budgets
        self._record_rows = record_rows
        # Rows still being written for streams whose client left (see ``stream``).
        self._finishing: set[asyncio.Task[None]] = set()

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        status, code = 200, None
        completion: ModelResult | None = None
        try:
            completion = await call_next(ctx)
            return completion
        except BaseException as error:
            status, code = _status_of(error)
            raise
        finally:
            text = _message_text(completion) if completion is not None else ""
            await self._finish(ctx, status, code, text, stream=False)

    async def stream(  # type: ignore[override]
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ModelChunk]:
        status, code = 200, None
        texts: list[str] = []
        try:
            async for chunk in call_next(ctx):
                if ctx.usage is None:
                    _delta_text(chunk, texts)
                yield chunk
        except BaseException as error:
            status, code = _status_of(error)
            raise
        finally:
            finish = self._finish(ctx, status, code, "".join(texts), stream=True)
            if status != CLIENT_CLOSED:
                await finish
            else:
                # The client left: its request's task is being cancelled, and every await
                # here with it, so the row is finished in a task of its own (counting the
                # output may have to wait for a thread).
                task = asyncio.ensure_future(finish)
                self._finishing.add(task)
                task.add_done_callback(self._finishing.discard)
                await asyncio.shield(task)

    async def _finish(
        self, ctx: CallContext, status: int, code: str | None, output: str, *, stream: bool
    ) -> None:
        # Zero-retention keys (``no_store``) still get a row: it holds counts, never content.
        record = await self._record(ctx, status, code, output, stream)
        record.stored = self._record_rows
        for listener in ctx.usage_listeners:
            try:
                await listener(record.prompt_tokens, record.completion_tokens)
            except Exception:
                logger.exception("truing up a rate limit to the real usage failed")
        for observe in self._observers:
            observe(record)
        if ctx.trace is not None:
            ctx.trace.record(ctx.call_span, record)
        future = self._writer.submit(record)
        if future is not None and status != CLIENT_CLOSED:
            await self._writer.wait(future)

    async def _record(
        self, ctx: CallContext, status: int, code: str | None, output: str, stream: bool
    ) -> UsageRecord:
        usage: Any = ctx.usage
        estimated = usage is None
        if usage is not None:
            prompt = int(usage.get("prompt_tokens") or 0)
            completion = int(usage.get("completion_tokens") or 0)
            cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        elif status == 200 or output:
            prompt = await self._estimator.served_prompt_tokens(ctx)
            completion = await self._estimator.output_tokens(ctx, output)
            cached = 0
        else:
            prompt = completion = cached = 0  # failed before any model produced anything
        cost = self._pricing.for_call(ctx.deployment, ctx.model).cost_nanos(
            prompt, completion, cached
        )
        if ctx.price_factor != 1.0:
            cost = round(cost * ctx.price_factor)
        saved = 0
        if ctx.cache_status in CACHE_HITS:
            cost, saved = 0, cost
        elif ctx.deployment is None and usage is None:
            cost = 0  # no upstream answered (a degraded or stale answer): nothing billed
        ctx.cost_nanos = cost
        principal = ctx.principal
        now = time.perf_counter()
        first = ctx.first_token_at
        return UsageRecord(
            created_at=time.time(),
            request_id=ctx.request_id,
            endpoint=ctx.endpoint,
            model=ctx.model,
            latency_ms=(now - ctx.started_at) * 1000,
            status=status,
            key_id=principal.key_id,
            user_id=principal.user,
            team_id=principal.team,
            deployment=ctx.deployment,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            usage_estimated=estimated and (prompt + completion) > 0,
            cost_nanos=cost,
            cost_saved_nanos=saved,
            ttft_ms=(first - ctx.started_at) * 1000 if stream and first is not None else None,
            error_code=code,
            cache_status=ctx.cache_status,
            context_strategy=ctx.context_strategy,
            context_cost_nanos=ctx.context_cost_nanos,
            attempts=ctx.attempts,
            stream=stream,
            settlements=(
                self._budgets.settle(ctx.budget_reservations, cost)
                if self._budgets is not None and ctx.budget_reservations
                else ()
            ),
        )
