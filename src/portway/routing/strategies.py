"""Load-balancing strategies: which of a group's available deployments takes the next attempt.

Contract: a strategy is built once per model group (``cls(context)``) and asked
``choose(candidates)`` with a non-empty list of deployments that are available right
now (circuit closed or ready for a probe, not rate-limited). Strategies are looked
up by name in ``STRATEGIES``; adding one means adding a class to that table.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from portway.routing.catalog import Deployment
    from portway.routing.health import HealthBook


@dataclass(frozen=True, slots=True)
class StrategyContext:
    """What a strategy may consult: live health, randomness and its group's settings."""

    health: HealthBook
    rng: random.Random
    exploration: float = 0.1


class RoutingStrategy(Protocol):
    name: ClassVar[str]

    def __init__(self, context: StrategyContext) -> None: ...

    def choose(self, candidates: Sequence[Deployment]) -> Deployment: ...


def weighted_choice(candidates: Sequence[Deployment], rng: random.Random) -> Deployment:
    """A deployment drawn with probability proportional to its configured ``weight``."""
    if len(candidates) == 1:
        return candidates[0]
    total = 0.0
    for deployment in candidates:
        total += deployment.config.weight
    point = rng.random() * total
    for deployment in candidates:
        point -= deployment.config.weight
        if point < 0:
            return deployment
    return candidates[-1]  # rounding left a sliver past the last weight


def _best_by(
    candidates: Sequence[Deployment], key: Callable[[Deployment], float], rng: random.Random
) -> Deployment:
    """The deployment with the lowest ``key``; ties are broken by weight."""
    best = min(key(d) for d in candidates)
    return weighted_choice([d for d in candidates if key(d) == best], rng)


class WeightedRandom:
    """Spread calls in proportion to the deployments' weights."""

    name: ClassVar[str] = "weighted-random"

    def __init__(self, context: StrategyContext) -> None:
        self._rng = context.rng

    def choose(self, candidates: Sequence[Deployment]) -> Deployment:
        return weighted_choice(candidates, self._rng)


class LeastBusy:
    """The deployment with the fewest calls in flight from this process."""

    name: ClassVar[str] = "least-busy"

    def __init__(self, context: StrategyContext) -> None:
        self._health = context.health
        self._rng = context.rng

    def choose(self, candidates: Sequence[Deployment]) -> Deployment:
        return _best_by(candidates, lambda d: self._health[d.id].in_flight, self._rng)


class LowestLatency:
    """The lowest EWMA time-to-first-byte, exploring so recovered deployments are re-measured.

    Deployments without a measurement are tried first; then a share ``exploration``
    of calls goes to a weighted-random deployment so that one that was slow (or just
    came back from an open circuit) gets the samples it needs to win traffic back.
    """

    name: ClassVar[str] = "lowest-latency"

    def __init__(self, context: StrategyContext) -> None:
        self._health = context.health
        self._rng = context.rng
        self._exploration = context.exploration

    def choose(self, candidates: Sequence[Deployment]) -> Deployment:
        unmeasured = [d for d in candidates if self._health[d.id].ttfb_ewma is None]
        if unmeasured:
            return weighted_choice(unmeasured, self._rng)
        if self._rng.random() < self._exploration:
            return weighted_choice(candidates, self._rng)
        return _best_by(candidates, self._ttfb, self._rng)

    def _ttfb(self, deployment: Deployment) -> float:
        return self._health[deployment.id].ttfb_ewma or 0.0


def price_per_million(deployment: Deployment) -> float:
    """Input plus output price per million tokens; a deployment without prices is free."""
    pricing = deployment.config.pricing
    return pricing.input + pricing.output if pricing else 0.0


class Cheapest:
    """The cheapest available deployment (by configured `pricing`)."""

    name: ClassVar[str] = "cheapest"

    def __init__(self, context: StrategyContext) -> None:
        self._rng = context.rng

    def choose(self, candidates: Sequence[Deployment]) -> Deployment:
        return _best_by(candidates, price_per_million, self._rng)


class PriorityOrder:
    """Primary first: the lowest `priority` value wins, the next one when it is unavailable."""

    name: ClassVar[str] = "priority"

    def __init__(self, context: StrategyContext) -> None:
        self._rng = context.rng

    def choose(self, candidates: Sequence[Deployment]) -> Deployment:
        return _best_by(candidates, lambda d: d.config.priority, self._rng)


STRATEGIES: MappingProxyType[str, type[RoutingStrategy]] = MappingProxyType(
    {
        strategy.name: strategy
        for strategy in (WeightedRandom, LeastBusy, LowestLatency, Cheapest, PriorityOrder)
    }
)
