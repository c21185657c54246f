"""Every gate admission is paired with one true-up to real (or counted) usage, or given back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from portway.accounting.estimate import UsageEstimator
from portway.accounting.ledger import UsageRecord
from portway.accounting.pricing import PricingCatalog
from portway.accounting.recorder import UsageRecorder
from portway.accounting.tokenizer import TokenizerService
from portway.config import AccountingConfig, ModelConfig
from portway.errors import RateLimitError
from portway.limits.base import Decision, Limit, WindowCounts
from portway.limits.gate import DeploymentGate
from portway.limits.memory import MemoryRateLimiter
from portway.limits.stage import KeyRateLimitStage
from portway.pipeline.base import CallContext
from portway.pipeline.service import Pipeline
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.router import Router
from portway.security.principal import Principal
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply

BIG = 10**9


@dataclass
class ReplyWithoutUsage(Reply):
    """An upstream that ignores ``stream_options.include_usage``."""

    def chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [chunk for chunk in super().chunks(body) if chunk.get("choices")]


class Ledger:
    """Stands in for the ``LedgerWriter``: keeps the records."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def submit(self, record: UsageRecord) -> None:
        self.records.append(record)


async def used_tokens(limiter: MemoryRateLimiter, key: str, limit: Limit) -> int:
    decision = await limiter.acquire(key, limit, 0)
    assert decision.remaining_tokens is not None and limit.tokens is not None
    return limit.tokens - decision.remaining_tokens


async def test_a_stream_without_usage_is_trued_up_to_the_counted_tokens(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.default = ReplyWithoutUsage(content="A fairly long answer " * 5)
    config = ModelConfig.model_validate(fake_model("chat", fake_openai.base_url, tpm=BIG))
    catalog = ModelCatalog.from_configs([config], ProviderRegistry())
    limiter = MemoryRateLimiter()
    deployment_limit = Limit(None, BIG)
    gate = DeploymentGate(limiter, {"chat": deployment_limit})
    router = Router(catalog, gate=gate)
    estimator = UsageEstimator(TokenizerService(), catalog, AccountingConfig(), router)
    ledger = Ledger()
    pricing = PricingCatalog(catalog.deployments)
    chat = Pipeline.of(
        [
            UsageRecorder(ledger, pricing, estimator),  # type: ignore[arg-type]
            KeyRateLimitStage(limiter),
            router,
        ],
        estimator.count_prompt,
    )
    request = ChatCompletionRequest.model_validate(
        {
            "model": "chat",
            "messages": [{"role": "user", "content": "Tell me something."}],
            "stream": True,
            "max_tokens": 500,
        }
    )
    principal = Principal(kind="virtual_key", key_id="k1", tpm=BIG)
    ctx = CallContext(request_id="r", principal=principal, request=request)
    await catalog.start()
    try:
        chunks = [chunk async for chunk in chat.stream(ctx)]
    finally:
        await catalog.close()
    assert chunks and ctx.usage is None
    [record] = ledger.records
    assert record.usage_estimated and record.completion_tokens > 0
    counted = record.prompt_tokens + record.completion_tokens
    # The deployment was admitted on the prompt estimate alone, the key on prompt +
    # max_tokens: both now hold what the call really used.
    assert await used_tokens(limiter, "deployment:chat", deployment_limit) == counted
    assert await used_tokens(limiter, "key:k1", Limit(None, BIG)) == counted


class GrantingLimiter(MemoryRateLimiter):
    """Refuses until ``open`` is set; the admission it then grants comes with a hook."""

    def __init__(self) -> None:
        super().__init__()
        self.open = False
        self.on_grant: Any = None
        self.adjusted: list[tuple[int, int]] = []

    async def acquire(self, key: str, limit: Limit, tokens: int) -> Decision:
        if not self.open:
            counts = WindowCounts(0, 0, limit.requests or 0, 0, 0.5)
            return Decision.evaluate(limit, counts, tokens, False)
        if self.on_grant is not None:
            self.on_grant()
        return await super().acquire(key, limit, tokens)

    async def adjust(self, key: str, limit: Limit, tokens: int, requests: int = 0) -> None:
        self.adjusted.append((tokens, requests))
        await super().adjust(key, limit, tokens, requests)


async def test_an_admission_the_caller_left_before_using_is_given_back() -> None:
    limiter = GrantingLimiter()
    gate = DeploymentGate(limiter, {"chat": Limit(requests=10)}, max_wait=5)
    waiting = asyncio.create_task(gate.acquire("chat", 40))
    await asyncio.sleep(0.01)  # queued behind the refusal
    # The caller is cancelled (the router's short peek timing out) in the very step the
    # queue admits it: the admission must not leak.
    limiter.on_grant = waiting.cancel
    limiter.open = True
    try:
        await waiting
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the waiting call was meant to be cancelled")
    await gate.close()
    assert limiter.adjusted == [(-40, -1)]
    decision = await limiter.acquire("deployment:chat", Limit(requests=10), 0)
    assert decision.remaining_requests == 9  # only the probe itself counted


async def test_a_queued_call_that_times_out_takes_nothing() -> None:
    limiter = GrantingLimiter()
    gate = DeploymentGate(limiter, {"chat": Limit(requests=10)}, max_wait=0.05)
    try:
        await gate.acquire("chat", 40)
    except RateLimitError as error:
        assert error.code == "rate_limit_exceeded"
    else:
        raise AssertionError("expected a RateLimitError")
    await gate.close()
    assert limiter.adjusted == []
