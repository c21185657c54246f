"""Budget periods and enforcement: reserve the worst case before a call, settle after.

Contract: a call whose principal has budgets (its key's, user's or team's) first reserves
``prompt tokens * input price + max output tokens * output price`` (the dearest deployment
of the model) on all of them at once, atomically across processes (see
``store.budgets``). If any would exceed its limit the call fails with 429
``insufficient_quota`` before reaching a model. The ledger later settles each reservation
to the real cost. Periods reset automatically at 00:00 UTC (daily), Monday 00:00 UTC
(weekly) and the 1st of the month 00:00 UTC (monthly); ``total`` never resets.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Literal

from portway.accounting.estimate import UsageEstimator
from portway.accounting.pricing import PricingCatalog, usd
from portway.errors import InsufficientQuotaError
from portway.pipeline.base import CallContext, CompleteHandler, Stage, StreamHandler
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict
from portway.security.principal import BudgetRef
from portway.store.budgets import BudgetRepository, Reservation

Period = Literal["daily", "weekly", "monthly", "total"]
PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly", "total")


def period_start(period: str, now: float) -> int:
    """Epoch seconds at which the period containing ``now`` began (0 for ``total``)."""
    if period == "total":
        return 0
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start = day
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
    elif period == "monthly":
        start = day.replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}")
    return calendar.timegm(start.timetuple())


def _describe(budget: BudgetRef) -> str:
    owner = {"key": "API key", "user": "user", "team": "team"}[budget.scope]
    period = "" if budget.period == "total" else f"{budget.period} "
    return f"the {period}budget of ${usd(budget.limit_nanos):.4f} for {owner} `{budget.subject}`"


class BudgetStage(Stage):
    """Reserves the worst-case cost on every budget of the caller before the call."""

    def __init__(
        self, budgets: BudgetRepository, pricing: PricingCatalog, estimator: UsageEstimator
    ) -> None:
        self._budgets = budgets
        self._pricing = pricing
        self._estimator = estimator

    async def _reserve(self, ctx: CallContext) -> None:
        applicable = ctx.principal.budgets
        price = self._pricing.worst_for_model(ctx.model)
        prompt = await self._estimator.prompt_tokens(ctx)
        worst = price.worst_case_nanos(prompt, self._estimator.max_output_tokens(ctx))
        now = time.time()
        reservations = tuple(
            Reservation(budget.id, period_start(budget.period, now), worst) for budget in applicable
        )
        refused = await self._budgets.reserve(reservations)
        if refused is not None:
            budget = next(b for b in applicable if b.id == refused)
            raise InsufficientQuotaError(
                f"You exceeded your current quota: this request may cost up to "
                f"${usd(worst):.6f}, which would exceed {_describe(budget)}. "
                "Raise the budget or wait for the next period.",
            )
        ctx.budget_reservations = reservations

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ChatCompletionDict:
        if ctx.principal.budgets:
            await self._reserve(ctx)
        return await call_next(ctx)

    def stream(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        if not ctx.principal.budgets:
            return call_next(ctx)
        return self._reserved_stream(ctx, call_next)

    async def _reserved_stream(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        await self._reserve(ctx)
        async for chunk in call_next(ctx):
            yield chunk
