"""The pricing catalog: built-ins by longest prefix, config overrides, exact nano-dollar costs."""

from __future__ import annotations

from portway.accounting.pricing import Price, PricingCatalog, builtin_price, price_of
from portway.config import ModelConfig


def test_longest_prefix_wins_for_dated_models() -> None:
    assert builtin_price("gpt-4o-mini-2024-07-18") == builtin_price("gpt-4o-mini")
    assert builtin_price("gpt-4o-2024-08-06") == Price(2.50, 10.00, 1.25)
    assert builtin_price("openai/gpt-4.1-nano") == Price(0.10, 0.40, 0.025)
    assert builtin_price("my-finetune") is None


def test_costs_are_exact_integers_with_cached_discount() -> None:
    price = Price(input=2.50, output=10.00, cached_input=1.25)
    # 1000 prompt (400 cached) + 200 completion tokens:
    # 600 * 2.5 + 400 * 1.25 + 200 * 10 = 4000 millionths of a dollar = 4_000_000 nanos
    assert price.cost_nanos(1000, 200, cached_tokens=400) == 4_000_000
    assert price.worst_case_nanos(1000, 200) == 4_500_000
    assert Price(0.075, 0.3).cost_nanos(1, 0) == 75


def test_config_overrides_and_local_models_are_free() -> None:
    priced = ModelConfig(name="gpt-4o", provider="openai", pricing={"input": 1.0, "output": 2.0})
    assert price_of(priced) == Price(1.0, 2.0, None)
    assert price_of(ModelConfig(name="smollm2-135m", provider="local")).is_free


def test_reservations_use_the_dearest_deployment_of_a_model() -> None:
    catalog = PricingCatalog(
        [
            ("m", ModelConfig(name="m", provider="openai", model="gpt-4o-mini")),
            ("m#1", ModelConfig(name="m", provider="openai", model="gpt-4o")),
        ]
    )
    assert catalog.worst_for_model("m") == Price(2.50, 10.00)
    assert catalog.for_deployment("m") == builtin_price("gpt-4o-mini")
    assert catalog.for_call(None, "m") == builtin_price("gpt-4o-mini")
