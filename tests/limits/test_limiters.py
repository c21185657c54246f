"""Rate limiters (memory and Redis) and the deployment gate's priority queue."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from portway.errors import RateLimitError
from portway.limits.base import Limit, RateLimiter, format_duration
from portway.limits.gate import DeploymentGate
from portway.limits.memory import MemoryRateLimiter
from portway.limits.redis import RedisRateLimiter
from tests.conftest import service_unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except (RedisConnectionError, OSError) as exc:
        await redis.aclose()
        service_unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")
    prefix = "portway-test:" + secrets.token_hex(6)
    yield RedisRateLimiter(redis, prefix=prefix)
    keys = [key async for key in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_no_more_than_the_limit_is_admitted_concurrently(limiter: RateLimiter) -> None:
    limit = Limit(requests=30)
    decisions = await asyncio.gather(*(limiter.acquire("k", limit, 0) for _ in range(100)))
    admitted = [d for d in decisions if d.allowed]
    assert len(admitted) == 30
    refused = [d for d in decisions if not d.allowed]
    assert all(d.retry_after > 0 and d.remaining_requests == 0 for d in refused)


async def test_token_limit_counts_tokens_and_adjusts(limiter: RateLimiter) -> None:
    limit = Limit(tokens=1000)
    assert (await limiter.acquire("t", limit, 600)).allowed
    refused = await limiter.acquire("t", limit, 600)
    assert not refused.allowed and refused.remaining_tokens == 400
    await limiter.adjust("t", limit, -500)  # the first call used only 100 tokens
    admitted = await limiter.acquire("t", limit, 600)
    assert admitted.allowed and admitted.remaining_tokens == 300
    too_big = await limiter.acquire("t", limit, 5000)
    assert not too_big.allowed and too_big.retry_after == float("inf")


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    limit = Limit(requests=1)
    assert (await limiter.acquire("a", limit, 0)).allowed
    assert (await limiter.acquire("b", limit, 0)).allowed
    assert not (await limiter.acquire("a", limit, 0)).allowed


def test_headers_follow_openai_names() -> None:
    async def decide() -> dict[str, str]:
        return (await MemoryRateLimiter().acquire("k", Limit(10, 1000), 100)).headers()

    headers = asyncio.run(decide())
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "9"
    assert headers["x-ratelimit-limit-tokens"] == "1000"
    assert headers["x-ratelimit-remaining-tokens"] == "900"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    assert [format_duration(x) for x in (0.02, 1.5, 360)] == ["20ms", "1.5s", "6m0s"]


def test_sliding_window_frees_capacity_gradually() -> None:
    now = [1_000_020.0]  # window index 16667, 0 s into it (60 s windows)
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    limit = Limit(requests=10)

    async def admitted(count: int) -> int:
        decisions = [await limiter.acquire("k", limit, 0) for _ in range(count)]
        return sum(d.allowed for d in decisions)

    assert asyncio.run(admitted(20)) == 10
    now[0] += 60  # next window, nothing has decayed yet
    assert asyncio.run(admitted(5)) == 0
    now[0] += 30  # half the previous window has decayed: 5 slots
    assert asyncio.run(admitted(20)) == 5


async def test_gate_admits_by_priority_when_saturated() -> None:
    gate = DeploymentGate(
        MemoryRateLimiter(), {"d": Limit(requests=1, window=0.15)}, max_depth=10, max_wait=5
    )
    await gate.acquire("d", 0, 0)  # takes the only slot of this window
    order: list[str] = []

    async def call(name: str, priority: int) -> None:
        await gate.acquire("d", 0, priority)
        order.append(name)

    low = asyncio.create_task(call("low", 0))
    await asyncio.sleep(0)
    high = asyncio.create_task(call("high", 5))
    await asyncio.wait_for(asyncio.gather(low, high), 5)
    assert order == ["high", "low"]
    stats = gate.stats()["d"]
    assert stats["admitted_after_wait"] == 2 and stats["depth"] == 0
    assert stats["wait_max_ms"] > 0
    await gate.close()


async def test_gate_rejects_beyond_depth_and_wait() -> None:
    gate = DeploymentGate(MemoryRateLimiter(), {"d": Limit(requests=1)}, max_depth=1, max_wait=0.05)
    await gate.acquire("d", 0)
    waiting = asyncio.create_task(gate.acquire("d", 0))
    await asyncio.sleep(0.01)
    with pytest.raises(RateLimitError, match="queue is full"):
        await gate.acquire("d", 0)
    with pytest.raises(RateLimitError, match="stayed at its rate limit") as caught:
        await waiting
    assert caught.value.headers["retry-after"]
    stats = gate.stats()["d"]
    assert (stats["rejected_queue_full"], stats["rejected_timeout"]) == (1, 1)
    await gate.acquire("free", 0)  # deployments without limits pass at once
    await gate.close()
