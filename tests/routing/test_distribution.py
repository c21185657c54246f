"""Strategies over real HTTP: traffic follows weights, priorities and prices."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.fakes.openai_upstream import Reply
from tests.routing.conftest import deployment

REQUESTS = 400


def test_weighted_random_follows_weights(gateway_for, upstreams) -> None:
    heavy, light = upstreams[0], upstreams[1]
    gateway = gateway_for(
        [deployment("chat", heavy, weight=3), deployment("chat", light, weight=1)],
        {"chat": {"strategy": "weighted-random"}},
    )
    for _ in range(REQUESTS):
        assert gateway.chat("chat").status_code == 200
    share = len(heavy.requests) / REQUESTS
    assert len(heavy.requests) + len(light.requests) == REQUESTS
    assert 0.68 <= share <= 0.82  # 0.75 expected; ±3.2 standard deviations


def test_priority_sends_everything_to_the_primary(gateway_for, upstreams) -> None:
    primary, secondary = upstreams[0], upstreams[1]
    gateway = gateway_for(
        [deployment("chat", secondary, priority=5), deployment("chat", primary, priority=1)],
        {"chat": {"strategy": "priority"}},
    )
    for _ in range(20):
        assert gateway.chat("chat").headers["x-portway-deployment"] == "chat#1"
    assert secondary.requests == []


def test_cheapest_prefers_the_lowest_price(gateway_for, upstreams) -> None:
    dear, cheap, free = upstreams
    gateway = gateway_for(
        [
            deployment("chat", dear, pricing={"input": 5, "output": 15}),
            deployment("chat", cheap, pricing={"input": 0.15, "output": 0.6}),
            deployment("chat", free, pricing={"input": 0, "output": 0}, supports_tools=False),
        ],
        {"chat": {"strategy": "cheapest"}},
    )
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    for _ in range(10):
        assert gateway.chat("chat").headers["x-portway-deployment"] == "chat#2"
    # The free deployment cannot do tools: the cheapest capable one gets those calls.
    assert gateway.chat("chat", tools=tools).headers["x-portway-deployment"] == "chat#1"
    assert dear.requests == []


def test_lowest_latency_prefers_the_fast_deployment(gateway_for, upstreams) -> None:
    slow, fast = upstreams[0], upstreams[1]
    slow.default = Reply(delay=0.05)
    gateway = gateway_for(
        [deployment("chat", slow), deployment("chat", fast)],
        {"chat": {"strategy": "lowest-latency", "exploration": 0.1}},
    )
    for _ in range(40):
        assert gateway.chat("chat").status_code == 200
    assert len(fast.requests) >= 30
    assert len(slow.requests) >= 1  # measured, and explored now and then
    health = gateway.health()
    assert health["chat"]["ttfb_ms"] > health["chat#1"]["ttfb_ms"]


def test_least_busy_avoids_the_deployment_with_calls_in_flight(gateway_for, upstreams) -> None:
    slow, fast = upstreams[0], upstreams[1]
    slow.default = Reply(delay=0.3)
    gateway = gateway_for(
        [deployment("chat", slow), deployment("chat", fast)], {"chat": {"strategy": "least-busy"}}
    )
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: gateway.chat("chat").status_code, range(30)))
    assert statuses == [200] * 30
    assert len(slow.requests) <= 9
