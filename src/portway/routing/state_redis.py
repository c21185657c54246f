"""Breaker state in Redis, shared by every Portway process that uses the same server.

Each deployment key is one hash (``open``, ``open_until``, ``level``,
``throttled_until``, ``generation``) plus a ``:probe`` key taken with ``SET NX PX``
for the half-open probe. Transitions that read before they write are Lua scripts, so
they are atomic across processes. ``load`` reads every key of a group in one round
trip. When Redis cannot be reached the store falls back to process-local state for a
few seconds (logging once) instead of failing requests: routing keeps working, only
the sharing is lost until Redis is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from portway.routing.state import CLOSED, BreakerRecord, MemoryBreakerStore

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEY_PREFIX = "portway:breaker:"
# Breaker hashes outlive any cooldown by far; they expire so retired deployments vanish.
RECORD_TTL_SECONDS = 24 * 3600
# After a Redis failure, stay on local state this long before trying Redis again, so a
# dead Redis costs one timeout per interval rather than one per request.
OUTAGE_BACKOFF_SECONDS = 5.0
SOCKET_TIMEOUT_SECONDS = 0.5

_OPEN = """
if ARGV[4] == '1' and redis.call('HGET', KEYS[1], 'open') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'open', '1', 'open_until', ARGV[1], 'level', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('DEL', KEYS[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
_RESET = """
redis.call('HSET', KEYS[1], 'open', '0', 'open_until', '0', 'level', '0')
redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('DEL', KEYS[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
_THROTTLE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'throttled_until') or '0')
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], 'throttled_until', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def _record(fields: dict[str, str], probing: bool) -> BreakerRecord:
    if not fields:
        return CLOSED if not probing else BreakerRecord(probing=True)
    return BreakerRecord(
        open=fields.get("open") == "1",
        open_until=float(fields.get("open_until", 0)),
        level=int(fields.get("level", 0)),
        throttled_until=float(fields.get("throttled_until", 0)),
        probing=probing,
        generation=int(fields.get("generation", 0)),
    )


class RedisBreakerStore:
    """``BreakerStore`` over ``redis.asyncio``, with a local fallback during outages."""

    kind = "redis"

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX) -> None:
        self._client: redis_asyncio.Redis = redis_asyncio.from_url(
            url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        self._prefix = prefix
        self._open_script = self._client.register_script(_OPEN)
        self._reset_script = self._client.register_script(_RESET)
        self._throttle_script = self._client.register_script(_THROTTLE)
        self._fallback = MemoryBreakerStore()
        self._down_until = 0.0

    async def start(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self._mark_down(exc)

    async def close(self) -> None:
        await self._client.aclose()

    def _keys(self, key: str) -> list[str]:
        # The hash tag keeps both keys in one slot, so the scripts also run on a cluster.
        base = f"{self._prefix}{{{key}}}"
        return [base, base + ":probe"]

    def _mark_down(self, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            logger.warning(
                "Redis breaker store unreachable (%s); using process-local breaker state for %.0fs",
                exc,
                OUTAGE_BACKOFF_SECONDS,
            )
        self._down_until = time.monotonic() + OUTAGE_BACKOFF_SECONDS

    async def _guarded(
        self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        if time.monotonic() < self._down_until:
            return await local()
        try:
            return await shared()
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            return await local()

    async def load(self, keys: Sequence[str]) -> list[BreakerRecord]:
        async def shared() -> list[BreakerRecord]:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    hash_key, probe_key = self._keys(key)
                    pipe.hgetall(hash_key)
                    pipe.exists(probe_key)
                replies: list[Any] = await pipe.execute()
            return [_record(replies[i], bool(replies[i + 1])) for i in range(0, len(replies), 2)]

        return await self._guarded(shared, lambda: self._fallback.load(keys))

    async def _open(self, key: str, until: float, level: int, only_if_closed: bool) -> bool:
        result = await self._open_script(
            keys=self._keys(key),
            args=[repr(until), level, RECORD_TTL_SECONDS, "1" if only_if_closed else "0"],
        )
        return bool(result)

    async def trip(self, key: str, until: float, level: int) -> bool:
        return await self._guarded(
            lambda: self._open(key, until, level, True),
            lambda: self._fallback.trip(key, until, level),
        )

    async def reopen(self, key: str, until: float, level: int) -> None:
        async def shared() -> None:
            await self._open(key, until, level, False)

        await self._guarded(shared, lambda: self._fallback.reopen(key, until, level))

    async def reset(self, key: str) -> None:
        async def shared() -> None:
            await self._reset_script(keys=self._keys(key), args=[RECORD_TTL_SECONDS])

        await self._guarded(shared, lambda: self._fallback.reset(key))

    async def claim_probe(self, key: str, ttl: float) -> bool:
        async def shared() -> bool:
            claimed = await self._client.set(
                self._keys(key)[1], "1", nx=True, px=max(1, int(ttl * 1000))
            )
            return bool(claimed)

        return await self._guarded(shared, lambda: self._fallback.claim_probe(key, ttl))

    async def release_probe(self, key: str) -> None:
        async def shared() -> None:
            await self._client.delete(self._keys(key)[1])

        await self._guarded(shared, lambda: self._fallback.release_probe(key))

    async def throttle(self, key: str, until: float) -> None:
        async def shared() -> None:
            await self._throttle_script(
                keys=self._keys(key), args=[repr(until), RECORD_TTL_SECONDS]
            )

        await self._guarded(shared, lambda: self._fallback.throttle(key, until))
