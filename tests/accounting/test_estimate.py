"""Estimates before a call reach every deployment a name can be served by (virtual models)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from portway.accounting.estimate import UsageEstimator
from portway.accounting.pricing import PricingCatalog, nanos, usd
from portway.accounting.tokenizer import TokenizerService
from portway.config import Settings
from portway.pipeline.base import CallContext
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.router import Router
from portway.security.principal import ANONYMOUS
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

PRICEY = {"input": 1000.0, "output": 2000.0}  # USD per 1M tokens
CHEAP = {"input": 1.0, "output": 1.0}


def settings(base_url: str) -> Settings:
    return Settings.model_validate(
        {
            "models": [
                # o200k: an exact count
                fake_model("cheap", base_url, model="gpt-4o-mini", pricing=CHEAP),
                # no known tokenizer: o200k x 1.1, so it counts more
                fake_model(
                    "pricey", base_url, model="vendor-x", pricing=PRICEY, max_output_tokens=900
                ),
                fake_model("chat", base_url, model="gpt-4o", pricing=CHEAP),
            ],
            "router": {
                "auto": {
                    "rules": [
                        {"when": {"keywords": ["invoice"]}, "use": "pricey"},
                        {"use": "cheap"},
                    ]
                },
                "chat": {"fallbacks": ["pricey"]},
            },
            "accounting": {"default_max_output_tokens": 100},
        }
    )


def estimator_for(config: Settings) -> tuple[UsageEstimator, PricingCatalog]:
    catalog = ModelCatalog.from_configs(config.models, ProviderRegistry(), config.accounting)
    estimator = UsageEstimator(
        TokenizerService(config.accounting.estimate_factor),
        catalog,
        config.accounting,
        Router(catalog, config.router),
    )
    return estimator, PricingCatalog(catalog.deployments)


def context(model: str, estimator: UsageEstimator, **body: Any) -> CallContext:
    request = ChatCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": "Summarise " * 40}], **body}
    )
    return CallContext(
        request_id="r", principal=ANONYMOUS, request=request, count_prompt=estimator.count_prompt
    )


async def test_a_virtual_model_counts_with_its_most_generous_tokenizer() -> None:
    estimator, _pricing = estimator_for(settings("http://127.0.0.1:9/v1"))
    assert [d.id for d in estimator.deployments_of("auto")] == ["pricey", "cheap"]
    virtual = await estimator.count_prompt(context("auto", estimator))
    exact = await estimator.count_prompt(context("cheap", estimator))
    estimated = await estimator.count_prompt(context("pricey", estimator))
    assert 0 < exact < estimated == virtual


async def test_a_virtual_model_reserves_at_its_dearest_target() -> None:
    estimator, pricing = estimator_for(settings("http://127.0.0.1:9/v1"))
    ctx = context("auto", estimator, max_tokens=50)
    prompt = await estimator.count_prompt(ctx)
    worst = await estimator.worst_case_nanos(ctx, pricing)
    assert worst == pricing.for_deployment("pricey").worst_case_nanos(prompt, 50)
    uncapped = context("auto", estimator)
    assert estimator.max_output_tokens(uncapped) == 900  # pricey's cap beats the default
    # Without max_tokens each target is bounded by its own cap.
    prompt = await estimator.count_prompt(uncapped)
    expected = pricing.for_deployment("pricey").worst_case_nanos(prompt, 900)
    assert await estimator.worst_case_nanos(uncapped, pricing) == expected


async def test_fallbacks_count_toward_the_worst_case() -> None:
    estimator, pricing = estimator_for(settings("http://127.0.0.1:9/v1"))
    assert [d.id for d in estimator.deployments_of("chat")] == ["chat", "pricey"]
    ctx = context("chat", estimator, max_tokens=10)
    prompt = await estimator.count_prompt(ctx)
    expected = pricing.for_deployment("pricey").worst_case_nanos(prompt, 10)
    assert await estimator.worst_case_nanos(ctx, pricing) == expected


async def test_unknown_names_count_nothing() -> None:
    estimator, pricing = estimator_for(settings("http://127.0.0.1:9/v1"))
    ctx = context("nope", estimator)
    assert await estimator.count_prompt(ctx) == 0
    assert await estimator.worst_case_nanos(ctx, pricing) == 0


MASTER = "sk-virtual-budget"


@pytest.fixture(scope="module")
def virtual(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    base = fake_openai_server.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "models": [
                fake_model("priced", base, pricing={"input": 1000.0, "output": 1000.0}),
                fake_model("cheap", base, pricing=CHEAP),
            ],
            "router": {
                "auto": {
                    "rules": [
                        {"when": {"keywords": ["invoice"]}, "use": "priced"},
                        {"use": "cheap"},
                    ]
                }
            },
        }
    )


def new_key(server: PortwayServer, budget: float) -> dict[str, Any]:
    admin = server.sdk(MASTER)
    response = admin.post(
        "/admin/keys", body={"max_budget": budget, "budget_period": "total"}, cast_to=object
    )
    return response  # type: ignore[return-value]


def ask(server: PortwayServer, key: str, text: str) -> Any:
    client = server.sdk(key)
    return client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}], max_tokens=5
    )


def test_a_budget_reserves_for_the_priced_target_of_auto(
    virtual: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    # `hi` + 5 output tokens may cost about $0.013 on `priced`: more than $0.01.
    small = new_key(virtual, 0.01)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(virtual, small["key"], "hi")
    error = caught.value.body
    assert error["code"] == "insufficient_quota"  # type: ignore[index]
    assert "may cost up to $0.01" in error["message"]  # type: ignore[index]
    assert fake_openai.requests == []

    roomy = new_key(virtual, 0.05)
    served = ask(virtual, roomy["key"], "an invoice, please")
    assert served.headers["x-portway-route"] == "priced"
    admin = virtual.sdk(MASTER)
    budget: Any = admin.get(f"/admin/keys/{roomy['id']}", cast_to=object)
    assert budget["budget"]["spend"] == pytest.approx(usd(nanos(12 * 0.001)))  # 7 + 5 tokens
    assert budget["budget"]["reserved"] == 0
