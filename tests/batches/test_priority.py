"""Batch lines wait behind interactive calls in a saturated deployment's queue."""

from __future__ import annotations

import asyncio

from portway.accounting.estimate import UsageEstimator
from portway.accounting.tokenizer import TokenizerService
from portway.batches.endpoints import LineCall, ModelLines
from portway.config import AccountingConfig, ModelConfig, SystemPrincipalConfig
from portway.limits.base import Limit
from portway.limits.gate import DeploymentGate
from portway.limits.memory import MemoryRateLimiter
from portway.limits.stage import KeyRateLimitStage
from portway.pipeline.client import ModelClient
from portway.pipeline.service import Pipeline
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.router import Router
from portway.security.principal import Principal
from portway.security.system import SystemPrincipal
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, last_user_text


def _chat(text: str) -> dict[str, object]:
    return {"model": "chat", "messages": [{"role": "user", "content": text}]}


async def test_interactive_calls_overtake_queued_batch_lines(fake_openai: FakeOpenAI) -> None:
    config = ModelConfig.model_validate(fake_model("chat", fake_openai.base_url))
    catalog = ModelCatalog.from_configs([config], ProviderRegistry())
    limiter = MemoryRateLimiter()
    # One call per 0.2 s window: everything after the first call queues.
    gate = DeploymentGate(limiter, {"chat": Limit(requests=1, window=0.2)}, max_wait=10)
    router = Router(catalog, gate=gate)
    estimator = UsageEstimator(TokenizerService(), catalog, AccountingConfig(), router)
    pipeline = Pipeline.of([KeyRateLimitStage(limiter), router], estimator.count_prompt)
    models = ModelClient(pipeline, SystemPrincipal(SystemPrincipalConfig(), None))  # type: ignore[arg-type]
    lines = ModelLines(models, ChatCompletionRequest)
    key = Principal(kind="virtual_key", key_id="k1")
    await catalog.start()
    try:
        first = asyncio.create_task(
            models.complete(ChatCompletionRequest.model_validate(_chat("first")), principal=key)
        )
        await asyncio.sleep(0.05)
        batch = [
            asyncio.create_task(
                lines(
                    _chat(f"batch {i}"), LineCall(key, f"req_{i}", priority=-10, price_factor=0.5)
                )
            )
            for i in range(3)
        ]
        await asyncio.sleep(0.05)  # the batch lines are queued first...
        interactive = asyncio.create_task(
            models.complete(
                ChatCompletionRequest.model_validate(_chat("interactive")), principal=key
            )
        )
        await asyncio.wait_for(asyncio.gather(first, interactive, *batch), 10)
    finally:
        await gate.close()
        await catalog.close()
    order = [last_user_text(request.body) for request in fake_openai.requests]
    # ...but the interactive call (the key's priority, 0) goes before them (-10).
    assert order == ["first", "interactive", "batch 0", "batch 1", "batch 2"]
