"""The router owns its routes: one ``chain(name)`` for routing and for budget estimates."""

from __future__ import annotations

from portway.accounting.estimate import UsageEstimator
from portway.accounting.tokenizer import TokenizerService
from portway.config import Settings
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.router import Router
from tests.conftest import fake_model

BASE_URL = "http://127.0.0.1:9/v1"


def settings() -> Settings:
    return Settings.model_validate(
        {
            "models": [fake_model(name, BASE_URL) for name in ("a", "b", "c", "d", "e")],
            "router": {
                # The default lists "a" itself: a group never falls back to itself.
                "*": {"fallbacks": ["a", "e"]},
                "a": {"fallbacks": ["b"], "context_window_fallbacks": ["c"]},
                "b": {"content_policy_fallbacks": ["d"]},
                "auto": {"rules": [{"when": {"has_tools": True}, "use": "b"}, {"use": "a"}]},
            },
        }
    )


def router_for(config: Settings) -> tuple[Router, ModelCatalog]:
    catalog = ModelCatalog.from_configs(config.models, ProviderRegistry(), config.accounting)
    return Router(catalog, config.router), catalog


def test_chain_lists_targets_then_their_fallbacks_of_every_kind() -> None:
    router, _catalog = router_for(settings())
    assert router.chain("a") == ("a", "b", "c")
    assert router.chain("b") == ("b", "d")  # a fallback's own lists are not followed from "a"
    assert router.chain("c") == ("c", "a", "e")  # no entry: the "*" default
    assert router.chain("auto") == ("b", "d", "a", "c")
    assert router.chain("nope") == ()
    assert router.names() == ["a", "b", "c", "d", "e", "auto"]


def test_the_routes_skip_the_group_itself_in_a_default_fallback_list() -> None:
    router, _catalog = router_for(settings())
    assert router.routes.fallbacks("a", "fallbacks") == ("b",)
    assert router.routes.fallbacks("e") == ("a",)
    assert router.routes.fallbacks("a", "context_window_fallbacks") == ("c",)


def test_budget_estimates_reach_exactly_the_routers_chain() -> None:
    config = settings()
    router, catalog = router_for(config)
    estimator = UsageEstimator(TokenizerService(), catalog, config.accounting, router)
    for name in router.names():
        expected = [d.id for group in router.chain(name) for d in catalog.group(group)]
        assert [d.id for d in estimator.deployments_of(name)] == expected
