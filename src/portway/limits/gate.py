"""Deployment admission: RPM/TPM per deployment with a bounded priority queue.

Contract: ``await gate.acquire(deployment_id, est_tokens, priority)`` returns once the
deployment's limiter admits the call. When the deployment is at its limit the call waits
in a per-deployment queue (higher ``priority`` first, then arrival order) for at most
``max_wait`` seconds; a full queue (``max_depth``) or a wait past ``max_wait`` raises
``RateLimitError`` (429 with ``retry-after``). Deployments without rpm/tpm pass at once.
``release`` trues up the token count after the call. An admission the caller cannot use
(it was cancelled or timed out just as it was admitted) is given back, request and
tokens. ``stats()`` shows queue depth and wait times per deployment.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from portway.errors import RateLimitError
from portway.limits.base import Decision, Limit, RateLimiter

_MIN_POLL = 0.005
_MAX_POLL = 0.25
_WAIT_SAMPLES = 1000


@dataclass(order=True, slots=True)
class _Waiter:
    rank: tuple[int, int]
    tokens: int = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)
    enqueued_at: float = field(compare=False)


@dataclass(slots=True)
class _Queue:
    heap: list[_Waiter] = field(default_factory=list)
    pump: asyncio.Task[None] | None = None
    admitted: int = 0
    admitted_after_wait: int = 0
    rejected_full: int = 0
    rejected_timeout: int = 0
    waits: deque[float] = field(default_factory=lambda: deque(maxlen=_WAIT_SAMPLES))

    def live(self) -> int:
        return sum(1 for waiter in self.heap if not waiter.future.done())


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(fraction * len(ordered)))]


class DeploymentGate:
    def __init__(
        self,
        limiter: RateLimiter,
        limits: Mapping[str, Limit],
        *,
        max_depth: int = 1000,
        max_wait: float = 30.0,
    ) -> None:
        self._limiter = limiter
        self._limits = {k: v for k, v in limits.items() if not v.unlimited}
        self._max_depth = max_depth
        self._max_wait = max_wait
        self._queues: dict[str, _Queue] = {}
        self._sequence = itertools.count()
        self._background: set[asyncio.Future[None]] = set()

    def limited(self, deployment_id: str) -> bool:
        return deployment_id in self._limits

    def counts_tokens(self, deployment_id: str) -> bool:
        limit = self._limits.get(deployment_id)
        return limit is not None and limit.tokens is not None

    @staticmethod
    def _key(deployment_id: str) -> str:
        return f"deployment:{deployment_id}"

    async def acquire(self, deployment_id: str, est_tokens: int, priority: int = 0) -> None:
        limit = self._limits.get(deployment_id)
        if limit is None:
            return
        queue = self._queues.setdefault(deployment_id, _Queue())
        if not queue.heap:
            decision = await self._ask(deployment_id, limit, est_tokens)
            if decision.allowed:
                queue.admitted += 1
                return
            if math.isinf(decision.retry_after):
                raise RateLimitError(
                    f"The request ({est_tokens} tokens) exceeds the token limit of "
                    f"deployment `{deployment_id}`.",
                    code="request_too_large",
                )
        if queue.live() >= self._max_depth:
            queue.rejected_full += 1
            raise RateLimitError(
                f"Deployment `{deployment_id}` is at its rate limit and its queue is full.",
                retry_after=1.0,
            )
        waiter = _Waiter(
            rank=(-priority, next(self._sequence)),
            tokens=est_tokens,
            future=asyncio.get_running_loop().create_future(),
            enqueued_at=time.perf_counter(),
        )
        heapq.heappush(queue.heap, waiter)
        if queue.pump is None or queue.pump.done():
            queue.pump = asyncio.create_task(self._pump(deployment_id, limit, queue))
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), self._max_wait)
        except TimeoutError:
            if not waiter.future.cancel():  # admitted just as the wait ran out
                self._give_back(deployment_id, limit, est_tokens)
            queue.rejected_timeout += 1
            raise RateLimitError(
                f"Deployment `{deployment_id}` stayed at its rate limit for "
                f"{self._max_wait:g} s; try again later.",
                retry_after=1.0,
            ) from None
        except asyncio.CancelledError:
            if not waiter.future.cancel():  # admitted, but the caller left before using it
                self._give_back(deployment_id, limit, est_tokens)
            raise
        queue.waits.append(time.perf_counter() - waiter.enqueued_at)

    async def _ask(self, deployment_id: str, limit: Limit, tokens: int) -> Decision:
        """The limiter's decision; if the caller is cancelled meanwhile (a Redis round
        trip), an admission that arrives afterwards is given back, not leaked."""
        if self._limiter.in_process:  # decides without awaiting: cannot be interrupted
            return await self._limiter.acquire(self._key(deployment_id), limit, tokens)
        asked = asyncio.ensure_future(
            self._limiter.acquire(self._key(deployment_id), limit, tokens)
        )
        try:
            return await asyncio.shield(asked)
        except asyncio.CancelledError:

            def unused(done: asyncio.Future[Decision]) -> None:
                if not done.cancelled() and done.exception() is None and done.result().allowed:
                    self._give_back(deployment_id, limit, tokens)

            asked.add_done_callback(unused)
            raise

    def _give_back(self, deployment_id: str, limit: Limit, tokens: int) -> None:
        """Return an admission nobody used (one request and its tokens), in the background."""
        task = asyncio.ensure_future(
            self._limiter.adjust(self._key(deployment_id), limit, -tokens, requests=-1)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _pump(self, deployment_id: str, limit: Limit, queue: _Queue) -> None:
        """Admit waiters in priority order as capacity frees up."""
        key = self._key(deployment_id)
        while queue.heap:
            head = queue.heap[0]
            if head.future.done():  # timed out or cancelled
                heapq.heappop(queue.heap)
                continue
            decision = await self._limiter.acquire(key, limit, head.tokens)
            if decision.allowed:
                heapq.heappop(queue.heap)
                if head.future.done():  # gave up while we asked: return the capacity
                    await self._limiter.adjust(key, limit, -head.tokens, requests=-1)
                    continue
                head.future.set_result(None)
                queue.admitted += 1
                queue.admitted_after_wait += 1
                continue
            delay = decision.retry_after if math.isfinite(decision.retry_after) else _MAX_POLL
            await asyncio.sleep(min(max(delay, _MIN_POLL), _MAX_POLL))

    async def release(self, deployment_id: str, est_tokens: int, actual_tokens: int) -> None:
        """True up the token count once the real usage is known."""
        limit = self._limits.get(deployment_id)
        if limit is not None and limit.tokens is not None and actual_tokens != est_tokens:
            await self._limiter.adjust(self._key(deployment_id), limit, actual_tokens - est_tokens)

    def stats(self) -> dict[str, dict[str, float | int]]:
        report: dict[str, dict[str, float | int]] = {}
        for deployment_id, limit in self._limits.items():
            queue = self._queues.get(deployment_id, _Queue())
            waits = list(queue.waits)
            report[deployment_id] = {
                "rpm": limit.requests or 0,
                "tpm": limit.tokens or 0,
                "depth": queue.live(),
                "admitted": queue.admitted,
                "admitted_after_wait": queue.admitted_after_wait,
                "rejected_queue_full": queue.rejected_full,
                "rejected_timeout": queue.rejected_timeout,
                "wait_p50_ms": _percentile(waits, 0.5) * 1000,
                "wait_p99_ms": _percentile(waits, 0.99) * 1000,
                "wait_max_ms": max(waits, default=0.0) * 1000,
            }
        return report

    async def close(self) -> None:
        for queue in self._queues.values():
            if queue.pump is not None:
                queue.pump.cancel()
            for waiter in queue.heap:
                waiter.future.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
