"""The breaker state machine with a hand-driven clock and the in-memory store."""

from __future__ import annotations

import pytest

from portway.routing.breaker import CircuitBreaker, Outcome
from portway.routing.config import BreakerConfig
from portway.routing.health import OutcomeWindow
from portway.routing.state import MemoryBreakerStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _view(breaker: CircuitBreaker, store: MemoryBreakerStore, clock: Clock):
    [record] = await store.load([breaker.key])
    return breaker.view(record, clock()), record


async def _attempt(breaker, store, clock, outcome: Outcome, retry_after: float | None = None):
    view, record = await _view(breaker, store, clock)
    assert view.ready
    lease = await breaker.admit(view, record)
    assert lease is not None
    await breaker.settle(lease, outcome, retry_after)
    return lease


@pytest.fixture
def parts():
    clock = Clock()
    store = MemoryBreakerStore()
    config = BreakerConfig(
        consecutive_failures=3, cooldown=10, cooldown_multiplier=2, max_cooldown=25
    )
    return CircuitBreaker("d", config, store, clock), store, clock


async def test_consecutive_failures_open_then_probe_closes(parts) -> None:
    breaker, store, clock = parts
    for _ in range(2):
        await _attempt(breaker, store, clock, Outcome.FAILURE)
    await _attempt(breaker, store, clock, Outcome.SUCCESS)  # resets the streak
    for _ in range(3):
        await _attempt(breaker, store, clock, Outcome.FAILURE)
    view, _ = await _view(breaker, store, clock)
    assert (view.state, view.ready) == ("open", False)
    clock.now += 10
    view, record = await _view(breaker, store, clock)
    assert (view.state, view.ready, view.probe) == ("half_open", True, True)
    lease = await breaker.admit(view, record)
    assert lease is not None and lease.probe
    # The probe is single: nobody else gets in while it runs.
    view, record = await _view(breaker, store, clock)
    assert view.state == "half_open" and not view.ready
    await breaker.settle(lease, Outcome.SUCCESS)
    view, _ = await _view(breaker, store, clock)
    assert (view.state, view.ready) == ("closed", True)


async def test_failed_probes_grow_the_cooldown_up_to_the_cap(parts) -> None:
    breaker, store, clock = parts
    for _ in range(3):
        await _attempt(breaker, store, clock, Outcome.FAILURE)
    cooldowns = []
    for _ in range(3):
        _, record = await _view(breaker, store, clock)
        cooldowns.append(record.open_until - clock.now)
        clock.now = record.open_until
        lease = await _attempt(breaker, store, clock, Outcome.FAILURE)
        assert lease.probe
    _, record = await _view(breaker, store, clock)
    cooldowns.append(record.open_until - clock.now)
    assert cooldowns == [10, 20, 25, 25]


async def test_abandoned_probe_frees_the_slot(parts) -> None:
    breaker, store, clock = parts
    for _ in range(3):
        await _attempt(breaker, store, clock, Outcome.FAILURE)
    clock.now += 10
    lease = await _attempt(breaker, store, clock, Outcome.ABANDONED)
    assert lease.probe
    view, _ = await _view(breaker, store, clock)
    assert (view.state, view.probe) == ("half_open", True)


async def test_rate_limit_throttles_without_counting_as_failure(parts) -> None:
    breaker, store, clock = parts
    for _ in range(5):
        await _attempt(breaker, store, clock, Outcome.RATE_LIMITED, retry_after=2)
        clock.now += 2
    view, _ = await _view(breaker, store, clock)
    assert view.state == "closed" and view.ready
    await _attempt(breaker, store, clock, Outcome.RATE_LIMITED, retry_after=None)
    view, _ = await _view(breaker, store, clock)
    assert not view.ready and view.throttled_until == clock.now + 1  # rate_limit_cooldown


async def test_failure_rate_needs_min_requests() -> None:
    clock = Clock()
    store = MemoryBreakerStore()
    config = BreakerConfig(consecutive_failures=99, failure_rate=0.5, min_requests=4, window=10)
    breaker = CircuitBreaker("d", config, store, clock)
    for outcome in (Outcome.FAILURE, Outcome.SUCCESS, Outcome.FAILURE):
        await _attempt(breaker, store, clock, outcome)
    assert (await _view(breaker, store, clock))[0].state == "closed"
    await _attempt(breaker, store, clock, Outcome.SUCCESS)  # 2 of 4 failed: 50 %
    assert (await _view(breaker, store, clock))[0].state == "closed"  # tripped on failures only
    await _attempt(breaker, store, clock, Outcome.FAILURE)
    assert (await _view(breaker, store, clock))[0].state == "open"


async def test_disabled_breaker_never_opens() -> None:
    clock = Clock()
    store = MemoryBreakerStore()
    breaker = CircuitBreaker(
        "d", BreakerConfig(enabled=False, consecutive_failures=1), store, clock
    )
    for _ in range(5):
        await _attempt(breaker, store, clock, Outcome.FAILURE)
    assert (await _view(breaker, store, clock))[0].state == "closed"


def test_outcome_window_forgets_old_outcomes() -> None:
    window = OutcomeWindow(span=10, buckets=10)
    for second in range(10):
        window.add(float(second), failed=second < 5)
    assert window.failure_rate(9.5) == 0.5
    assert window.failure_rate(13.5) == pytest.approx(2 / 7)  # seconds 0..2 have expired
    assert window.failure_rate(100) == 0 and window.total == 0
