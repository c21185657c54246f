"""A model group at run time: its deployments, breakers, strategy, and one attempt's bookkeeping.

Contract: ``DeploymentGroup.pick`` returns a deployment that may take an attempt now,
with the breaker ``Lease`` for it (the half-open probe claimed when needed), or tells
when the earliest rate-limited deployment frees up. ``Attempt`` wraps one call to a
deployment: it counts the call in flight from ``start`` until it is settled exactly
once (``succeed`` / ``fail`` / ``abandon``), feeding latency, breaker and gate.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portway.errors import PortwayError
from portway.routing.breaker import BreakerView, CircuitBreaker, Lease, Outcome
from portway.routing.catalog import Deployment
from portway.routing.config import GroupRouteConfig
from portway.routing.gate import Permit
from portway.routing.health import DeploymentHealth, HealthBook
from portway.routing.retry import RetryPolicy, outcome_of, retry_after_of
from portway.routing.state import BreakerRecord, BreakerStore
from portway.routing.strategies import STRATEGIES, StrategyContext


def state_key(deployment: Deployment) -> str:
    """The breaker's key in the store: the deployment id plus a digest of its upstream.

    Processes configured with the same upstream share its breaker; a deployment id
    reused for another upstream does not inherit a stale circuit.
    """
    config = deployment.config
    upstream = (
        f"{config.provider}|{config.base_url or ''}|{config.upstream_model}|{config.path or ''}"
    )
    return f"{deployment.id}:{hashlib.sha1(upstream.encode()).hexdigest()[:10]}"


@dataclass(frozen=True, slots=True)
class Pick:
    deployment: Deployment
    lease: Lease


@dataclass(frozen=True, slots=True)
class NoPick:
    """Nothing is ready; ``ready_at`` is when a rate-limited deployment frees up (if any)."""

    ready_at: float | None
    open_until: float | None


class DeploymentGroup:
    """One model group: deployments plus the routing machinery its config asks for."""

    def __init__(
        self,
        name: str,
        deployments: Sequence[Deployment],
        config: GroupRouteConfig,
        *,
        store: BreakerStore,
        health: HealthBook,
        rng: random.Random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.deployments = list(deployments)
        self.config = config
        self.retry = RetryPolicy.from_config(config)
        self.strategy = STRATEGIES[config.strategy](
            StrategyContext(health, rng, config.exploration)
        )
        self.breakers = {
            d.id: CircuitBreaker(state_key(d), config.breaker, store, clock)
            for d in self.deployments
        }
        self._store = store
        self._health = health
        self._clock = clock

    async def views(
        self, deployments: Sequence[Deployment]
    ) -> list[tuple[Deployment, BreakerRecord, BreakerView]]:
        records = await self._store.load([self.breakers[d.id].key for d in deployments])
        now = self._clock()
        return [
            (d, record, self.breakers[d.id].view(record, now))
            for d, record in zip(deployments, records, strict=True)
        ]

    async def pick(self, eligible: Sequence[Deployment], tried: Collection[str]) -> Pick | NoPick:
        """A ready deployment (untried ones first) chosen by the strategy, with its lease."""
        remaining = list(eligible)
        while remaining:
            views = await self.views(remaining)
            ready = [(d, record, view) for d, record, view in views if view.ready]
            if not ready:
                return _no_pick(views, self._clock())
            fresh = [item for item in ready if item[0].id not in tried] or ready
            chosen = self.strategy.choose([d for d, _, _ in fresh])
            _, record, view = next(item for item in fresh if item[0] is chosen)
            lease = await self.breakers[chosen.id].admit(view, record)
            if lease is not None:
                return Pick(chosen, lease)
            remaining.remove(chosen)  # another caller took the half-open probe first
        return NoPick(None, None)

    def start_attempt(self, pick: Pick, permit: Permit | None) -> Attempt:
        attempt = Attempt(
            deployment=pick.deployment,
            breaker=self.breakers[pick.deployment.id],
            lease=pick.lease,
            health=self._health[pick.deployment.id],
            permit=permit,
        )
        attempt.start()
        return attempt


def _no_pick(views: Sequence[tuple[Deployment, BreakerRecord, BreakerView]], now: float) -> NoPick:
    # Only deployments held back by a 429 alone are worth waiting for; an open circuit
    # (or a probe in flight elsewhere) is not.
    waits = [
        view.throttled_until
        for _, record, view in views
        if view.throttled_until > now
        and (view.state == "closed" or (view.state == "half_open" and not record.probing))
    ]
    opens = [view.open_until for _, _, view in views if view.state == "open"]
    return NoPick(min(waits) if waits else None, min(opens) if opens else None)


@dataclass
class Attempt:
    """One call to one deployment, from start to its single settlement."""

    deployment: Deployment
    breaker: CircuitBreaker
    lease: Lease
    health: DeploymentHealth
    permit: Permit | None
    started: float = field(default_factory=time.perf_counter)
    settled: bool = False

    def start(self) -> None:
        self.started = time.perf_counter()
        self.health.begin()

    def first_byte(self) -> None:
        self.health.record_first_byte(time.perf_counter() - self.started)

    async def succeed(self, usage: Mapping[str, Any] | None = None) -> None:
        if self._settle(usage):
            self.health.record_success(time.perf_counter() - self.started)
            await self.breaker.settle(self.lease, Outcome.SUCCESS)

    async def fail(self, error: BaseException) -> None:
        if self._settle(None):
            outcome = outcome_of(error)
            if outcome is Outcome.SUCCESS:
                self.health.record_success(time.perf_counter() - self.started)
            else:
                self.health.record_failure(_describe(error))
            await self.breaker.settle(self.lease, outcome, retry_after_of(error))

    async def abandon(self) -> None:
        if self._settle(None):
            await self.breaker.settle(self.lease, Outcome.ABANDONED)

    def _settle(self, usage: Mapping[str, Any] | None) -> bool:
        if self.settled:
            return False
        self.settled = True
        self.health.end()
        if self.permit is not None:
            self.permit.release(usage)
        return True


def _describe(error: BaseException) -> str:
    if isinstance(error, PortwayError):
        return f"{type(error).__name__}: {error.code}"
    return type(error).__name__
