"""Circuit breakers over real HTTP: transitions, no traffic while open, a single probe."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.fakes.openai_upstream import Fail, Reply, Sometimes
from tests.routing.conftest import deployment

BREAKER = {
    "consecutive_failures": 2,
    "cooldown": "300ms",
    "cooldown_multiplier": 4,
    "max_cooldown": "10s",
}
ROUTE = {
    "strategy": "priority",
    "retries": 1,
    "backoff": {"base": "5ms", "max": "10ms"},
    "breaker": BREAKER,
}


def _wait_for_state(gateway, deployment_id: str, state: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        row = gateway.health()[deployment_id]
        if row["state"] == state or time.monotonic() > deadline:
            return row
        time.sleep(0.02)


def test_breaker_closed_open_half_open_closed(gateway_for, upstreams) -> None:
    primary, secondary = upstreams[0], upstreams[1]
    primary.default = Fail(500)
    gateway = gateway_for(
        [deployment("chat", primary, priority=0), deployment("chat", secondary, priority=1)],
        {"chat": ROUTE},
    )
    assert gateway.health()["chat"]["state"] == "closed"
    for _ in range(2):  # each call: the primary fails, the secondary answers
        response = gateway.chat("chat")
        assert response.status_code == 200
        assert response.headers["x-portway-deployment"] == "chat#1"
    health = gateway.health()["chat"]
    assert health["state"] == "open"
    assert health["last_error"].startswith("UpstreamError")

    # Open: the primary gets no traffic at all.
    seen = len(primary.requests)
    for _ in range(5):
        assert gateway.chat("chat").headers["x-portway-attempts"] == "1"
    assert len(primary.requests) == seen

    # After the cooldown: half-open; one probe succeeds and closes the circuit.
    assert _wait_for_state(gateway, "chat", "half_open")["state"] == "half_open"
    primary.default = Reply(content="recovered")
    response = gateway.chat("chat")
    assert response.headers["x-portway-deployment"] == "chat"
    assert len(primary.requests) == seen + 1
    assert gateway.health()["chat"]["state"] == "closed"
    assert gateway.chat("chat").headers["x-portway-deployment"] == "chat"


def test_failed_probe_reopens_with_a_longer_cooldown(gateway_for, upstreams) -> None:
    primary, secondary = upstreams[0], upstreams[1]
    primary.default = Fail(500)
    gateway = gateway_for(
        [deployment("chat", primary, priority=0), deployment("chat", secondary, priority=1)],
        {"chat": ROUTE},
    )
    for _ in range(2):
        gateway.chat("chat")
    first_open = gateway.health()["chat"]
    first_cooldown = first_open["open_until"] - time.time()
    assert first_open["state"] == "open" and first_cooldown <= 0.3
    _wait_for_state(gateway, "chat", "half_open")
    gateway.chat("chat")  # the probe fails
    reopened = gateway.health()["chat"]
    assert reopened["state"] == "open"
    assert reopened["open_until"] - time.time() > 0.6  # 300 ms x 4, minus the time spent


def test_half_open_lets_a_single_probe_through(gateway_for, upstreams) -> None:
    primary, secondary = upstreams[0], upstreams[1]
    primary.default = Fail(500)
    gateway = gateway_for(
        [deployment("chat", primary, priority=0), deployment("chat", secondary, priority=1)],
        {"chat": ROUTE},
    )
    for _ in range(2):
        gateway.chat("chat")
    _wait_for_state(gateway, "chat", "half_open")
    seen = len(primary.requests)
    primary.default = Reply(content="slow probe", delay=0.3)
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: gateway.chat("chat"), range(6)))
    assert all(r.status_code == 200 for r in responses)
    assert len(primary.requests) == seen + 1
    assert sum(r.headers["x-portway-deployment"] == "chat" for r in responses) == 1


def test_failure_rate_in_the_window_opens_the_circuit(gateway_for, upstreams) -> None:
    flaky, steady = upstreams[0], upstreams[1]
    flaky.default = Sometimes(0.6, Fail(500), seed=3)
    route = {
        "strategy": "priority",
        "retries": 1,
        "backoff": {"base": "5ms"},
        "breaker": {
            "consecutive_failures": 100,
            "failure_rate": 0.5,
            "min_requests": 6,
            "window": "30s",
            "cooldown": "30s",
        },
    }
    gateway = gateway_for(
        [deployment("chat", flaky, priority=0), deployment("chat", steady, priority=1)],
        {"chat": route},
    )
    for _ in range(12):
        assert gateway.chat("chat").status_code == 200
    health = gateway.health()["chat"]
    assert health["state"] == "open"
    assert health["error_rate"] == 0  # the window restarts when the circuit opens
    assert len(flaky.requests) < 12
