"""Which failures are worth another attempt, how long to wait, and what they say about health.

Contract: ``is_retryable`` is true only for errors whose class declares ``retryable``
and whose status is not a client error that no retry can fix (400, 401, 403, 404,
422). ``RetryPolicy.backoff`` is exponential backoff with full jitter. ``outcome_of``
tells the circuit breaker whether an error speaks against the deployment.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from portway.errors import PortwayError, RateLimitError
from portway.routing.breaker import Outcome
from portway.routing.config import GroupRouteConfig

NEVER_RETRIED_STATUSES = frozenset({400, 401, 403, 404, 422})


def is_retryable(error: PortwayError) -> bool:
    return error.retryable and error.status_code not in NEVER_RETRIED_STATUSES


def outcome_of(error: BaseException) -> Outcome:
    """How an attempt that raised ``error`` counts for the deployment's breaker."""
    if isinstance(error, RateLimitError):
        return Outcome.RATE_LIMITED
    if isinstance(error, PortwayError) and error.status_code < 500:
        return Outcome.SUCCESS  # the upstream answered; the request was the problem
    return Outcome.FAILURE


def retry_after_of(error: BaseException) -> float | None:
    return error.retry_after if isinstance(error, RateLimitError) else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int
    base: float
    cap: float
    retry_after_cap: float

    @classmethod
    def from_config(cls, config: GroupRouteConfig) -> RetryPolicy:
        return cls(
            retries=config.retries,
            base=config.backoff.base,
            cap=config.backoff.max,
            retry_after_cap=config.backoff.retry_after_cap,
        )

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Seconds before retry ``retry_number`` (1-based): uniform in [0, min(cap, base·2ⁿ⁻¹)]."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (retry_number - 1)))
