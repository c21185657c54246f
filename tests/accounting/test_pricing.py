"""The pricing catalog: built-ins by longest prefix, config overrides, exact nano-dollar costs."""

from __future__ import annotations

from portway.accounting.pricing import Price, PricingCatalog, builtin_price, price_of
from portway.config import ModelConfig
from portway.providers.local import LocalProvider
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog


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


def test_config_overrides_and_unbilled_providers_are_free() -> None:
    priced = ModelConfig(name="gpt-4o", provider="openai", pricing={"input": 1.0, "output": 2.0})
    assert price_of(priced) == Price(1.0, 2.0, None)
    assert price_of(priced, billed=False) == Price(1.0, 2.0, None)
    assert price_of(ModelConfig(name="gpt-4o", provider="openai"), billed=False).is_free


def test_the_provider_says_whether_it_bills_not_its_name() -> None:
    """A provider registered under another name that runs models locally is still free."""
    configs = [
        ModelConfig(name="mine", provider="on-this-box", model="gpt-4o"),
        ModelConfig(name="theirs", provider="openai", model="gpt-4o", base_url="http://x/v1"),
    ]
    registry = ProviderRegistry(extra={"on-this-box": LocalProvider})
    catalog = PricingCatalog(ModelCatalog.from_configs(configs, registry).deployments)
    assert catalog.for_deployment("mine").is_free
    assert catalog.for_deployment("theirs") == builtin_price("gpt-4o")


def test_reservations_use_the_dearest_deployment_of_a_model() -> None:
    configs = [
        ModelConfig(name="m", provider="openai", model="gpt-4o-mini", base_url="http://x/v1"),
        ModelConfig(name="m", provider="openai", model="gpt-4o", base_url="http://x/v1"),
    ]
    catalog = PricingCatalog(ModelCatalog.from_configs(configs, ProviderRegistry()).deployments)
    assert catalog.worst_for_model("m") == Price(2.50, 10.00)
    assert catalog.for_deployment("m") == builtin_price("gpt-4o-mini")
    assert catalog.for_call(None, "m") == builtin_price("gpt-4o-mini")
