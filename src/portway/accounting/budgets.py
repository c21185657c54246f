"""The budget stage: reserve the worst case before a call (the ledger settles it after).

Contract: a call whose principal has budgets (its key's, user's or team's) first holds
its worst-case cost (``UsageEstimator.worst_case_nanos``: the prompt by the most generous
tokenizer and the output cap, at the dearest deployment the model name can reach,
virtual models and fallbacks included) on all of them at once, through
``accounting.leases`` (in process memory; the database only when this process's slice of
a budget runs out). If any would exceed its limit the call fails with 429
``insufficient_quota`` before reaching a model. The usage recorder settles the holds at
the real cost. Periods reset automatically at 00:00 UTC (daily), Monday 00:00 UTC
(weekly) and the 1st of the month 00:00 UTC (monthly); ``total`` never resets.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from portway.accounting.estimate import UsageEstimator
from portway.accounting.leases import BudgetLeases, Want
from portway.accounting.pricing import PricingCatalog, usd
from portway.errors import InsufficientQuotaError
from portway.periods import PeriodStarts
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelResult,
    Stage,
    StreamHandler,
)
from portway.security.principal import BudgetRef


def _describe(budget: BudgetRef) -> str:
    owner = {"key": "API key", "user": "user", "team": "team"}[budget.scope]
    period = "" if budget.period == "total" else f"{budget.period} "
    return f"the {period}budget of ${usd(budget.limit_nanos):.4f} for {owner} `{budget.subject}`"


class BudgetStage(Stage):
    """Holds the worst-case cost on every budget of the caller before the call."""

    def __init__(
        self,
        leases: BudgetLeases,
        pricing: PricingCatalog,
        estimator: UsageEstimator,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._leases = leases
        self._pricing = pricing
        self._estimator = estimator
        self._clock = clock
        self._period_starts = PeriodStarts()

    async def _reserve(self, ctx: CallContext) -> None:
        applicable = ctx.principal.budgets
        worst = await self._estimator.worst_case_nanos(ctx, self._pricing)
        now = self._clock()
        starts = self._period_starts
        wants = [Want(b.id, starts(b.period, now), worst) for b in applicable]
        held = await self._leases.reserve(wants)
        if isinstance(held, int):
            budget = next(b for b in applicable if b.id == held)
            raise InsufficientQuotaError(
                f"You exceeded your current quota: this request may cost up to "
                f"${usd(worst):.6f}, which would exceed {_describe(budget)}. "
                "Raise the budget or wait for the next period.",
            )
        ctx.budget_reservations = tuple(held)

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        if ctx.principal.budgets:
            await self._reserve(ctx)
        return await call_next(ctx)

    def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        if not ctx.principal.budgets:
            return call_next(ctx)
        return self._reserved_stream(ctx, call_next)

    async def _reserved_stream(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ModelChunk]:
        await self._reserve(ctx)
        async for chunk in call_next(ctx):
            yield chunk
