"""The context stage: fit a chat prompt to its model's window before it is routed.

Contract (``chat`` only): the strategy comes from ``policy``; ``off`` and ``fallback``
pass the call on untouched (``fallback``: the router's ``context_window_fallbacks``
catch an upstream's ``context_length_exceeded``). Otherwise the prompt, counted by the
pipeline's one counter (``CallContext.prompt_tokens``), must fit the smallest window the
name can reach minus the output reserve (``window``). ``error`` answers 400
``context_length_exceeded`` with the counts before any upstream call; ``truncate`` and
``middle-out`` drop whole units (``turns``, ``strategies``) and hand the shorter prompt,
with its count, to the stages below; ``summarize`` and ``retrieve`` replace the oldest
turns by a summary (``compactor``; ``retrieve`` also puts back the relevant older turns,
``recall``), whose cost the call's ledger row carries (``context_cost_nanos``). The
response says what happened: ``x-portway-context: truncated|summarized|retrieved|none``,
``x-portway-context-tokens: <before>-><after>`` and, when a summary was used,
``x-portway-context-messages: <before>-><after>``. Calls the stage makes for itself
(endpoint ``context.*``: the summarizer) are never fitted (no summary of a summary).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

from portway.accounting.estimate import UsageEstimator
from portway.accounting.tokenizer import OFFLOAD_CHARS, ChatTokenCounter, request_chars
from portway.context.compactor import Compaction, CompactionSpec, Compactor, Costs
from portway.context.policy import CONTEXT_HEADER, TOKENS_HEADER, Choice, ContextPolicy
from portway.context.strategies import DROP_STRATEGIES, Fit, fit
from portway.context.summarizer import INTERNAL_PREFIX
from portway.context.turns import split
from portway.context.window import output_reserve, smallest_window
from portway.errors import ContextLengthExceededError
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelResult,
    Operation,
    Stage,
    StreamHandler,
)
from portway.protocol.chat import ChatCompletionRequest

MESSAGES_HEADER = "x-portway-context-messages"
COMPACTING = frozenset({"summarize", "retrieve"})


@dataclass(frozen=True, slots=True)
class Budget:
    window: int
    reserve: int

    @property
    def prompt(self) -> int:
        return self.window - self.reserve


def prompt_costs(
    counters: tuple[ChatTokenCounter, ...], request: ChatCompletionRequest
) -> tuple[list[list[int]], list[int]]:
    """Each message's tokens and the rest of the prompt's, per tokenizer."""
    costs = [[c.message_cost(m) for m in request.messages] for c in counters]
    fixed = [c.framing.per_prompt + c.count_extras(request) for c in counters]
    return costs, fixed


class ContextStage(Stage):
    operations: ClassVar[frozenset[Operation]] = frozenset({"chat"})

    def __init__(
        self,
        policy: ContextPolicy,
        estimator: UsageEstimator,
        compactor: Compactor | None = None,
    ) -> None:
        self._policy = policy
        self._estimator = estimator
        self._compactor = compactor
        self._windows: Mapping[str, int | None] = {
            name: smallest_window(reach.deployments) for name, reach in estimator.reach.items()
        }

    def window(self, model: str) -> int | None:
        """The smallest window ``model`` can reach (None: none is known)."""
        return self._windows.get(model)

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        await self.fit(ctx)
        return await call_next(ctx)

    async def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        await self.fit(ctx)
        async for chunk in call_next(ctx):
            yield chunk

    def budget(self, ctx: CallContext, choice: Choice) -> Budget | None:
        window = self._windows.get(ctx.model)
        if window is None:
            return None
        requested = self._estimator.max_output_tokens(ctx)
        return Budget(window, output_reserve(window, choice.reserve_output_tokens, requested))

    async def fit(self, ctx: CallContext) -> None:
        """Apply the call's strategy to ``ctx.request`` (or raise 400)."""
        if ctx.endpoint.startswith(INTERNAL_PREFIX):
            return  # the summarizer's own call: never summarized in turn
        choice = self._policy.choose(ctx)
        if choice.strategy == "off":
            return
        ctx.context_strategy = choice.strategy
        if choice.strategy == "fallback":
            return
        budget = self.budget(ctx, choice)
        if budget is None:  # no deployment declares a window: nothing to fit to
            ctx.response_headers[CONTEXT_HEADER] = "none"
            return
        before = await ctx.prompt_tokens()
        if before <= budget.prompt:
            ctx.response_headers[CONTEXT_HEADER] = "none"
            ctx.response_headers[TOKENS_HEADER] = f"{before}->{before}"
            return
        if choice.strategy == "error":
            raise ContextLengthExceededError(
                f"This model's maximum context length is {budget.window} tokens, "
                f"{budget.reserve} of them reserved for the completion. However, your "
                f"messages resulted in {before} tokens (at most {budget.prompt} fit).",
                param="messages",
            )
        if choice.strategy in COMPACTING:
            await self._compact(ctx, choice, budget, before)
            return
        result = await self._drop(ctx, choice.strategy, budget.prompt)
        if not result.fits:
            raise ContextLengthExceededError(
                f"This model's maximum context length is {budget.window} tokens, "
                f"{budget.reserve} of them reserved for the completion. Your messages "
                f"resulted in {before} tokens, and still {result.tokens} after the "
                f"{choice.strategy} strategy dropped every turn it may (at most "
                f"{budget.prompt} fit).",
                param="messages",
            )
        request = ctx.request
        assert isinstance(request, ChatCompletionRequest)
        messages = [request.messages[i] for i in result.kept]
        ctx.replace_request(request.model_copy(update={"messages": messages}), result.tokens)
        ctx.response_headers[CONTEXT_HEADER] = "truncated"
        ctx.response_headers[TOKENS_HEADER] = f"{before}->{result.tokens}"

    async def _costs(self, ctx: CallContext) -> Costs:
        request = ctx.request
        assert isinstance(request, ChatCompletionRequest)
        tokenizer = self._estimator.tokenizer
        reach = self._estimator.reach[ctx.model]
        counters = tuple(
            [
                await tokenizer.counter(d.config.provider, d.config.upstream_model)
                for d in reach.counters
            ]
        )
        if request_chars(request) > OFFLOAD_CHARS:
            costs, fixed = await asyncio.to_thread(prompt_costs, counters, request)
        else:
            costs, fixed = prompt_costs(counters, request)
        return Costs(counters, costs, fixed)

    async def _drop(self, ctx: CallContext, strategy: str, budget: int) -> Fit:
        request = ctx.request
        assert isinstance(request, ChatCompletionRequest)
        costs = await self._costs(ctx)
        turns = split(request.messages)
        order = DROP_STRATEGIES[strategy].drop_order(turns)
        return fit(turns, order, costs.messages, costs.fixed, budget)

    async def _compact(self, ctx: CallContext, choice: Choice, budget: Budget, before: int) -> None:
        request = ctx.request
        assert isinstance(request, ChatCompletionRequest)
        if self._compactor is None:
            raise RuntimeError("the context stage was built without a compactor")
        config = choice.config
        settings = CompactionSpec(
            model=config.summarizer_model or ctx.model,
            max_tokens=config.summary_max_tokens,
            retrieve_turns=config.retrieve_max_turns if choice.strategy == "retrieve" else 0,
            chain=ctx.context_chain,
        )
        turns = split(request.messages)
        result = await self._compactor.compact(
            ctx, request.messages, turns, await self._costs(ctx), budget.prompt, settings
        )
        ctx.context_cost_nanos += result.cost_nanos
        after = None
        if result.fits:
            ctx.replace_request(request.model_copy(update={"messages": result.messages}))
            after = await ctx.prompt_tokens()
        if after is None or after > budget.prompt:
            ctx.replace_request(request, before)
            raise ContextLengthExceededError(
                f"This model's maximum context length is {budget.window} tokens, "
                f"{budget.reserve} of them reserved for the completion. Your messages "
                f"resulted in {before} tokens, and the newest turns with a summary of the "
                f"older ones still do not fit (at most {budget.prompt} fit).",
                param="messages",
            )
        ctx.response_headers[CONTEXT_HEADER] = _outcome(result)
        ctx.response_headers[TOKENS_HEADER] = f"{before}->{after}"
        ctx.response_headers[MESSAGES_HEADER] = f"{len(request.messages)}->{len(result.messages)}"


def _outcome(result: Compaction) -> str:
    return "retrieved" if result.retrieved else "summarized"
