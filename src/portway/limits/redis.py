"""The Redis rate limiter: one atomic Lua script per decision, shared by every process.

The script reads both windows, decides and counts in one step on the Redis server, with
Redis's clock (``TIME``), so processes on different machines agree. Both windows of a key
share a hash tag, so the script also works on Redis Cluster.
"""

from __future__ import annotations

from redis.asyncio import Redis

from portway.limits.base import Decision, Limit, WindowCounts

_SCRIPT = """
local now = redis.call('TIME')
local window_ms = tonumber(ARGV[1])
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local index = math.floor(now_ms / window_ms)
local offset = now_ms - index * window_ms
local cur_key = KEYS[1] .. ':' .. index
local prev_key = KEYS[1] .. ':' .. (index - 1)
local cur = redis.call('HMGET', cur_key, 'r', 't')
local prev = redis.call('HMGET', prev_key, 'r', 't')
local cur_r, cur_t = tonumber(cur[1]) or 0, tonumber(cur[2]) or 0
local prev_r, prev_t = tonumber(prev[1]) or 0, tonumber(prev[2]) or 0
local rpm, tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local mode = ARGV[5]
local weight = 1 - offset / window_ms
local allowed = 1
if mode == 'adjust' then
  -- Never below zero: a give-back may concern a call counted in the previous window.
  if redis.call('HINCRBY', cur_key, 't', tokens) < 0 then redis.call('HSET', cur_key, 't', 0) end
  local requests = tonumber(ARGV[6]) or 0
  if requests ~= 0 and redis.call('HINCRBY', cur_key, 'r', requests) < 0 then
    redis.call('HSET', cur_key, 'r', 0)
  end
  redis.call('PEXPIRE', cur_key, window_ms * 2 + 1000)
  return {1, prev_r, prev_t, cur_r, cur_t, offset}
end
if rpm >= 0 and prev_r * weight + cur_r + 1 > rpm then allowed = 0 end
if tpm >= 0 and prev_t * weight + cur_t + tokens > tpm then allowed = 0 end
if allowed == 1 then
  redis.call('HINCRBY', cur_key, 'r', 1)
  redis.call('HINCRBY', cur_key, 't', tokens)
  redis.call('PEXPIRE', cur_key, window_ms * 2 + 1000)
end
return {allowed, prev_r, prev_t, cur_r, cur_t, offset}
"""


class RedisRateLimiter:
    in_process = False

    def __init__(self, redis: Redis, prefix: str = "portway:rl") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SCRIPT)

    @classmethod
    def from_url(cls, url: str) -> RedisRateLimiter:
        return cls(Redis.from_url(url))

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{{{key}}}"

    async def _run(
        self, key: str, limit: Limit, tokens: int, mode: str, requests: int = 0
    ) -> list[int]:
        window_ms = round(limit.window * 1000)
        request_limit = -1 if limit.requests is None else limit.requests
        token_limit = -1 if limit.tokens is None else limit.tokens
        return await self._script(  # type: ignore[no-any-return]
            keys=[self._key(key)],
            args=[window_ms, request_limit, token_limit, tokens, mode, requests],
        )

    async def acquire(self, key: str, limit: Limit, tokens: int) -> Decision:
        allowed, prev_r, prev_t, cur_r, cur_t, offset = await self._run(
            key, limit, tokens, "acquire"
        )
        elapsed = offset / (limit.window * 1000)
        counts = WindowCounts(prev_r, prev_t, cur_r, cur_t, elapsed)
        return Decision.evaluate(limit, counts, tokens, bool(allowed))

    async def adjust(self, key: str, limit: Limit, tokens: int, requests: int = 0) -> None:
        await self._run(key, limit, tokens, "adjust", requests)

    async def close(self) -> None:
        await self._redis.aclose()
