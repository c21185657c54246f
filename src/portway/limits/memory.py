"""The in-process rate limiter (default): exact within one Portway process."""

from __future__ import annotations

import time
from collections.abc import Callable

from portway.limits.base import Decision, Limit, WindowCounts, admits


class MemoryRateLimiter:
    in_process = True

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # key -> [window index, prev requests, prev tokens, cur requests, cur tokens]
        self._state: dict[str, list[float]] = {}

    def _roll(self, key: str, limit: Limit) -> tuple[list[float], float]:
        now = self._clock()
        index, offset = divmod(now, limit.window)
        state = self._state.get(key)
        if state is None:
            state = [index, 0.0, 0.0, 0.0, 0.0]
            self._state[key] = state
        elif state[0] != index:
            if state[0] == index - 1:
                state[1], state[2] = state[3], state[4]
            else:
                state[1] = state[2] = 0.0
            state[0], state[3], state[4] = index, 0.0, 0.0
        return state, offset / limit.window

    async def acquire(self, key: str, limit: Limit, tokens: int) -> Decision:
        state, elapsed = self._roll(key, limit)
        counts = WindowCounts(state[1], state[2], state[3], state[4], elapsed)
        allowed = admits(limit, counts, tokens)
        if allowed:
            state[3] += 1
            state[4] += tokens
        return Decision.evaluate(limit, counts, tokens, allowed)

    async def adjust(self, key: str, limit: Limit, tokens: int, requests: int = 0) -> None:
        state, _ = self._roll(key, limit)
        state[3] = max(0.0, state[3] + requests)
        state[4] = max(0.0, state[4] + tokens)

    async def close(self) -> None:
        self._state.clear()
