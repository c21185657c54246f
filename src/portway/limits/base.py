"""Rate limits as sliding-window counters, shared by the memory and Redis backends.

A limit allows ``requests`` and/or ``tokens`` per ``window`` seconds (60: RPM/TPM). Usage
is counted per fixed window; the estimate at a moment is ``previous * (1 - elapsed
fraction) + current``, so capacity frees up smoothly and no fixed window ever admits more
than the limit. A request is admitted only if both estimates stay within their limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int | None = None
    tokens: int | None = None
    window: float = WINDOW_SECONDS

    @property
    def unlimited(self) -> bool:
        return self.requests is None and self.tokens is None


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Counts of the previous and current fixed windows and how far into the current one."""

    prev_requests: float
    prev_tokens: float
    cur_requests: float
    cur_tokens: float
    elapsed: float  # fraction of the current window elapsed, in [0, 1)


def _used(prev: float, cur: float, elapsed: float) -> float:
    return prev * (1 - elapsed) + cur


def _wait(prev: float, cur: float, need: float, limit: int, elapsed: float, window: float) -> float:
    """Seconds until ``need`` more units fit under ``limit``."""
    if need > limit:
        return math.inf
    if _used(prev, cur, elapsed) + need <= limit:
        return 0.0
    if cur + need <= limit and prev > 0:
        fraction = 1 - (limit - need - cur) / prev
        return max(0.0, fraction - elapsed) * window
    later = max(0.0, 1 - (limit - need) / cur) if cur > 0 else 0.0
    return (1 - elapsed + later) * window


def _reset(prev: float, cur: float, elapsed: float, window: float) -> float:
    """Seconds until the counter is back to zero."""
    if cur > 0:
        return (2 - elapsed) * window
    if prev > 0:
        return (1 - elapsed) * window
    return 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: Limit
    remaining_requests: int | None
    remaining_tokens: int | None
    reset_requests: float
    reset_tokens: float
    retry_after: float  # 0 when allowed; inf when the request can never fit

    @classmethod
    def evaluate(cls, limit: Limit, counts: WindowCounts, tokens: int, allowed: bool) -> Decision:
        """The decision for ``counts`` observed *before* this request was (maybe) added."""
        c, window = counts, limit.window
        used_requests = _used(c.prev_requests, c.cur_requests, c.elapsed) + (1 if allowed else 0)
        used_tokens = _used(c.prev_tokens, c.cur_tokens, c.elapsed) + (tokens if allowed else 0)
        retry = 0.0
        if not allowed:
            if limit.requests is not None:
                retry = _wait(c.prev_requests, c.cur_requests, 1, limit.requests, c.elapsed, window)
            if limit.tokens is not None:
                retry = max(
                    retry,
                    _wait(c.prev_tokens, c.cur_tokens, tokens, limit.tokens, c.elapsed, window),
                )
        cur_requests = c.cur_requests + (1 if allowed else 0)
        cur_tokens = c.cur_tokens + (tokens if allowed else 0)
        return cls(
            allowed=allowed,
            limit=limit,
            remaining_requests=(
                max(0, math.floor(limit.requests - used_requests))
                if limit.requests is not None
                else None
            ),
            remaining_tokens=(
                max(0, math.floor(limit.tokens - used_tokens)) if limit.tokens is not None else None
            ),
            reset_requests=_reset(c.prev_requests, cur_requests, c.elapsed, window),
            reset_tokens=_reset(c.prev_tokens, cur_tokens, c.elapsed, window),
            retry_after=retry,
        )

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for the limits that are set."""
        headers: dict[str, str] = {}
        if self.limit.requests is not None:
            headers["x-ratelimit-limit-requests"] = str(self.limit.requests)
            headers["x-ratelimit-remaining-requests"] = str(self.remaining_requests)
            headers["x-ratelimit-reset-requests"] = format_duration(self.reset_requests)
        if self.limit.tokens is not None:
            headers["x-ratelimit-limit-tokens"] = str(self.limit.tokens)
            headers["x-ratelimit-remaining-tokens"] = str(self.remaining_tokens)
            headers["x-ratelimit-reset-tokens"] = format_duration(self.reset_tokens)
        return headers


def admits(limit: Limit, counts: WindowCounts, tokens: int) -> bool:
    c = counts
    if limit.requests is not None and (
        _used(c.prev_requests, c.cur_requests, c.elapsed) + 1 > limit.requests
    ):
        return False
    return not (
        limit.tokens is not None
        and _used(c.prev_tokens, c.cur_tokens, c.elapsed) + tokens > limit.tokens
    )


def format_duration(seconds: float) -> str:
    """OpenAI's style: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s"


class RateLimiter(Protocol):
    # True when decisions are made without awaiting anything (no cancellation point).
    in_process: bool

    async def acquire(self, key: str, limit: Limit, tokens: int) -> Decision:
        """Admit one request of ``tokens`` tokens under ``limit`` for ``key``, or refuse."""
        ...

    async def adjust(self, key: str, limit: Limit, tokens: int, requests: int = 0) -> None:
        """Add (or give back, if negative) tokens once the real usage is known, and
        requests (give back an admission that was never used)."""
        ...

    async def close(self) -> None: ...
