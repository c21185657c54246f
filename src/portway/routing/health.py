"""Per-deployment health as this process sees it: in-flight calls, latency EWMAs, outcomes.

Contract: ``DeploymentHealth`` is updated by the router around every attempt
(``begin`` → ``finish``) and read by the strategies (least-busy, lowest-latency) and by
``GET /health/deployments``. It is process-local on purpose: in-flight counts and
latencies describe this replica's view; the shared part of health is the breaker
state (``routing.state``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

# Weight of the newest sample in the latency averages: recent enough to follow a
# deployment that slows down, smooth enough to ignore one slow call.
EWMA_ALPHA = 0.3


class OutcomeWindow:
    """Successes and failures over a sliding time window, in a few buckets (O(1) memory)."""

    __slots__ = ("_bucket_width", "_buckets", "_span", "failures", "total")

    def __init__(self, span: float, buckets: int = 10) -> None:
        self._span = span
        self._bucket_width = span / buckets
        # Each bucket: [start time, total, failures].
        self._buckets: deque[list[float]] = deque()
        self.total = 0
        self.failures = 0

    def add(self, now: float, failed: bool) -> None:
        self._expire(now)
        if not self._buckets or now - self._buckets[-1][0] >= self._bucket_width:
            self._buckets.append([now, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        self.total += 1
        if failed:
            bucket[2] += 1
            self.failures += 1

    def failure_rate(self, now: float) -> float:
        self._expire(now)
        return self.failures / self.total if self.total else 0.0

    def clear(self) -> None:
        self._buckets.clear()
        self.total = self.failures = 0

    def _expire(self, now: float) -> None:
        horizon = now - self._span
        while self._buckets and self._buckets[0][0] + self._bucket_width <= horizon:
            _, total, failures = self._buckets.popleft()
            self.total -= int(total)
            self.failures -= int(failures)


def _ewma(previous: float | None, sample: float) -> float:
    return sample if previous is None else previous + EWMA_ALPHA * (sample - previous)


@dataclass(slots=True)
class DeploymentHealth:
    """What this process has seen of one deployment."""

    deployment_id: str
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    ttfb_ewma: float | None = None
    latency_ewma: float | None = None
    last_error: str | None = None
    last_success_at: float | None = None
    last_failure_at: float | None = None

    def begin(self) -> None:
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1

    def record_first_byte(self, seconds: float) -> None:
        self.ttfb_ewma = _ewma(self.ttfb_ewma, seconds)

    def record_success(self, seconds: float) -> None:
        self.requests += 1
        self.latency_ewma = _ewma(self.latency_ewma, seconds)
        self.last_success_at = time.time()

    def record_failure(self, error: str) -> None:
        self.requests += 1
        self.failures += 1
        self.last_error = error
        self.last_failure_at = time.time()


@dataclass
class HealthBook:
    """Every deployment's ``DeploymentHealth``, by deployment id."""

    entries: dict[str, DeploymentHealth] = field(default_factory=dict)

    @classmethod
    def for_ids(cls, deployment_ids: Iterable[str]) -> HealthBook:
        return cls(
            {deployment_id: DeploymentHealth(deployment_id) for deployment_id in deployment_ids}
        )

    def __getitem__(self, deployment_id: str) -> DeploymentHealth:
        return self.entries[deployment_id]
