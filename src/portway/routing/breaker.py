"""One circuit breaker per deployment: closed → open → half-open → closed (or open again).

Contract: the router reads a group's ``BreakerRecord``s from the store once per pick,
turns each into a ``BreakerView`` (``view``), lets the strategy choose among the ready
ones, asks ``admit`` (which claims the single half-open probe when needed) and reports
the attempt's ``Outcome`` with ``settle``. Failures are counted locally (consecutive
failures and a failure rate over a sliding window); opening, probing and closing go
through the store, so with Redis every process honours a circuit any process opened.
A 429 does not count as a failure: it takes the deployment out for its retry-after
(``throttled``), whatever the circuit's state.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import NamedTuple

from portway.routing.config import BreakerConfig
from portway.routing.health import OutcomeWindow
from portway.routing.state import BreakerRecord, BreakerStore


class Outcome(enum.Enum):
    SUCCESS = "success"  # the deployment answered (a client error counts: it is alive)
    FAILURE = "failure"  # connection error, timeout, 5xx, malformed answer
    RATE_LIMITED = "rate_limited"
    ABANDONED = "abandoned"  # cancelled before an answer: says nothing about health


class BreakerView(NamedTuple):
    """A breaker's state at one instant, as the router needs it (built per pick: cheap)."""

    state: str  # "closed" | "open" | "half_open"
    ready: bool  # an attempt may start now
    probe: bool  # that attempt would be the half-open probe
    throttled_until: float  # > now: rate-limited until then
    open_until: float


READY = BreakerView("closed", True, False, 0.0, 0.0)


class Lease(NamedTuple):
    """Permission for one attempt; ``settle`` it exactly once."""

    probe: bool
    level: int  # the open level the probe tests (a failed probe re-opens one level up)


ORDINARY = Lease(probe=False, level=0)


class CircuitBreaker:
    """The breaker of one deployment (``key`` names it in the store)."""

    def __init__(
        self,
        key: str,
        config: BreakerConfig,
        store: BreakerStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.config = config
        self._store = store
        self._clock = clock
        self.window = OutcomeWindow(config.window)
        self.consecutive_failures = 0
        self._generation = 0

    def view(self, record: BreakerRecord, now: float) -> BreakerView:
        if record.generation != self._generation:
            # Another transition happened (maybe in another process): start counting afresh.
            self._generation = record.generation
            self.window.clear()
            self.consecutive_failures = 0
        throttled = record.throttled_until > now
        if not record.open or not self.config.enabled:
            if not throttled:
                return READY
            return BreakerView("closed", False, False, record.throttled_until, 0.0)
        if now < record.open_until:
            return BreakerView("open", False, False, record.throttled_until, record.open_until)
        may_probe = not record.probing and not throttled
        return BreakerView(
            "half_open", may_probe, may_probe, record.throttled_until, record.open_until
        )

    async def admit(self, view: BreakerView, record: BreakerRecord) -> Lease | None:
        """A lease for one attempt, or None when another caller took the probe first."""
        if not view.probe:
            return ORDINARY
        if await self._store.claim_probe(self.key, self.config.probe_timeout):
            return Lease(probe=True, level=record.level)
        return None

    def cooldown(self, level: int) -> float:
        grown = self.config.cooldown * self.config.cooldown_multiplier**level
        return min(self.config.max_cooldown, grown)

    def _tripped(self, now: float) -> bool:
        if self.consecutive_failures >= self.config.consecutive_failures:
            return True
        return (
            self.window.total >= self.config.min_requests
            and self.window.failure_rate(now) >= self.config.failure_rate
        )

    def count_success(self, now: float | None = None) -> None:
        """A success outside a probe: local counters only."""
        self.window.add(self._clock() if now is None else now, failed=False)
        self.consecutive_failures = 0

    async def settle(
        self, lease: Lease, outcome: Outcome, retry_after: float | None = None
    ) -> None:
        now = self._clock()
        if outcome is Outcome.SUCCESS:
            self.count_success(now)
            if lease.probe:
                await self._store.reset(self.key)
        elif outcome is Outcome.FAILURE:
            if lease.probe:
                level = lease.level + 1
                await self._store.reopen(self.key, now + self.cooldown(level), level)
                return
            self.window.add(now, failed=True)
            self.consecutive_failures += 1
            if self.config.enabled and self._tripped(now):
                await self._store.trip(self.key, now + self.cooldown(0), 0)
        elif outcome is Outcome.RATE_LIMITED:
            pause = retry_after if retry_after is not None else self.config.rate_limit_cooldown
            await self._store.throttle(self.key, now + min(pause, self.config.max_cooldown))
            if lease.probe:
                await self._store.release_probe(self.key)
        elif lease.probe:
            await self._store.release_probe(self.key)
