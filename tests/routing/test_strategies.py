"""Strategies in isolation, with hand-set health."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from portway.config import ModelConfig
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import Deployment, ModelCatalog
from portway.routing.config import STRATEGY_NAMES
from portway.routing.health import HealthBook
from portway.routing.strategies import STRATEGIES, StrategyContext


def _deployments(*extras: dict) -> list[Deployment]:
    configs = [
        ModelConfig(name="g", provider="openai", base_url=f"http://{i}/v1", **extra)
        for i, extra in enumerate(extras)
    ]
    return ModelCatalog.from_configs(configs, ProviderRegistry()).deployments


def _strategy(name: str, deployments: list[Deployment], exploration: float = 0.1):
    health = HealthBook.for_ids(d.id for d in deployments)
    context = StrategyContext(health, random.Random(7), exploration)
    return STRATEGIES[name](context), health


def test_all_strategies_are_registered() -> None:
    assert (
        set(STRATEGIES)
        == set(STRATEGY_NAMES)
        == {
            "weighted-random",
            "least-busy",
            "lowest-latency",
            "cheapest",
            "priority",
        }
    )


def test_weighted_random_matches_weights() -> None:
    deployments = _deployments({"weight": 1}, {"weight": 2}, {"weight": 7})
    strategy, _ = _strategy("weighted-random", deployments)
    counts = Counter(strategy.choose(deployments).id for _ in range(10000))
    for deployment, expected in zip(deployments, (0.1, 0.2, 0.7), strict=True):
        assert counts[deployment.id] / 10000 == pytest.approx(expected, abs=0.02)


def test_least_busy_picks_the_fewest_in_flight() -> None:
    deployments = _deployments({}, {}, {})
    strategy, health = _strategy("least-busy", deployments)
    health[deployments[0].id].in_flight = 4
    health[deployments[1].id].in_flight = 1
    health[deployments[2].id].in_flight = 2
    assert {strategy.choose(deployments).id for _ in range(50)} == {deployments[1].id}


def test_lowest_latency_measures_first_then_exploits_and_explores() -> None:
    deployments = _deployments({}, {}, {})
    strategy, health = _strategy("lowest-latency", deployments, exploration=0.1)
    # Unmeasured deployments come first.
    health[deployments[0].id].record_first_byte(0.5)
    health[deployments[1].id].record_first_byte(0.05)
    assert strategy.choose(deployments) is deployments[2]
    health[deployments[2].id].record_first_byte(0.2)
    counts = Counter(strategy.choose(deployments).id for _ in range(3000))
    assert counts[deployments[1].id] / 3000 == pytest.approx(0.9 + 0.1 / 3, abs=0.03)
    # Exploration keeps the slow ones measured, so a recovered one can win again.
    assert counts[deployments[0].id] > 0 and counts[deployments[2].id] > 0
    for _ in range(10):
        health[deployments[0].id].record_first_byte(0.01)
    assert Counter(strategy.choose(deployments).id for _ in range(200)).most_common(1)[0][0] == (
        deployments[0].id
    )


def test_cheapest_and_priority() -> None:
    deployments = _deployments(
        {"pricing": {"input": 3, "output": 15}, "priority": 0},
        {"pricing": {"input": 0.1, "output": 0.4}, "priority": 2},
        {"pricing": {"input": 1, "output": 1}, "priority": 1},
    )
    cheapest, _ = _strategy("cheapest", deployments)
    priority, _ = _strategy("priority", deployments)
    assert cheapest.choose(deployments) is deployments[1]
    assert priority.choose(deployments) is deployments[0]
    assert priority.choose(deployments[1:]) is deployments[2]
