"""The cache stage on its own: tenancy, shared mode, stale answers, failing backends."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from portway.cache.backends.memory import MemoryBackend
from portway.cache.keys import EntryKey
from portway.cache.policy import resolve_policies
from portway.cache.stage import CacheStage
from portway.config import CacheConfig
from portway.pipeline.base import CallContext
from portway.protocol.chat import ChatCompletionRequest
from portway.security.principal import ANONYMOUS, MASTER, Principal

TEAM_A = Principal(kind="virtual_key", key_id="ka", team="team-a")
TEAM_B = Principal(kind="virtual_key", key_id="kb", team="team-b")
SOLO_KEY = Principal(kind="virtual_key", key_id="solo")


def stage(backend: Any = None, **config: Any) -> CacheStage:
    settings = CacheConfig.model_validate({"enabled": True, **config})
    policies = resolve_policies(settings, ["m"])
    return CacheStage(settings, policies, backend or MemoryBackend(1 << 20))


def context(principal: Principal, text: str = "hi", **headers: str) -> CallContext:
    request = ChatCompletionRequest.model_validate(
        {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": text}]}
    )
    return CallContext(
        request_id="r", principal=principal, request=request, request_headers=headers
    )


class Upstream:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, ctx: CallContext) -> Any:
        self.calls += 1
        return {
            "id": f"chatcmpl-{self.calls}",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"answer {self.calls}"},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        }


async def test_namespaces_follow_team_then_key_then_server() -> None:
    cache = stage()
    assert cache.namespace(context(TEAM_A)) == "team-a"
    assert cache.namespace(context(SOLO_KEY)) == "solo"
    assert cache.namespace(context(ANONYMOUS)) == "default"
    assert cache.namespace(context(MASTER)) == "master"
    sub = context(TEAM_A, **{"x-portway-cache-namespace": "batch"})
    assert cache.namespace(sub) == "team-a/batch"


async def test_tenants_are_isolated_unless_shared() -> None:
    upstream = Upstream()
    isolated = stage()
    for principal in (TEAM_A, TEAM_B, TEAM_A):
        await isolated.complete(context(principal), upstream)
    assert upstream.calls == 2
    shared_upstream = Upstream()
    shared = stage(shared=True)
    answers = [
        await shared.complete(context(principal), shared_upstream) for principal in (TEAM_A, TEAM_B)
    ]
    assert shared_upstream.calls == 1
    assert answers[1]["choices"][0]["message"]["content"] == "answer 1"
    assert shared.namespace(context(TEAM_B)) == "shared"


async def test_hit_sets_status_usage_and_counts_savings() -> None:
    cache, upstream = stage(), Upstream()
    await cache.complete(context(TEAM_A), upstream)
    ctx = context(TEAM_A)
    completion = await cache.complete(ctx, upstream)
    assert ctx.cache_status == "hit" and ctx.response_headers["x-portway-cache"] == "hit"
    assert ctx.usage == completion["usage"]
    assert completion["usage"]["prompt_tokens_details"]["cached_tokens"] == 4
    assert ctx.deployment is None and upstream.calls == 1
    assert cache.stats.saved_prompt_tokens == 4 and cache.stats.saved_completion_tokens == 2


async def test_stale_answers_outlive_the_ttl() -> None:
    cache, upstream = stage(ttl=0.05, stale_ttl=60), Upstream()
    await cache.complete(context(TEAM_A), upstream)
    await asyncio.sleep(0.08)
    ctx = context(TEAM_A)
    await cache.complete(ctx, upstream)
    assert ctx.cache_status == "miss" and upstream.calls == 2
    stale = await cache.lookup_stale(context(TEAM_A))
    assert stale is not None
    assert stale.completion()["choices"][0]["message"]["content"] == "answer 2"
    chunks = stale.chunks(include_usage=True)
    assert chunks[-1]["usage"]["total_tokens"] == 6
    assert await cache.lookup_stale(context(TEAM_B)) is None


async def test_disabled_models_pass_through_untouched() -> None:
    cache, upstream = stage(models={"m": {"enabled": False}}), Upstream()
    ctx = context(TEAM_A)
    await cache.complete(ctx, upstream)
    await cache.complete(context(TEAM_A), upstream)
    assert upstream.calls == 2 and ctx.cache_status is None and ctx.response_headers == {}
    assert await cache.lookup_stale(context(TEAM_A)) is None


class DeadBackend(MemoryBackend):
    async def get(self, key: EntryKey) -> bytes | None:
        raise RedisConnectionError("connection refused")

    async def set(self, key: EntryKey, value: bytes, keep_for: float) -> None:
        raise RedisConnectionError("connection refused")


async def test_a_failing_backend_degrades_to_a_miss() -> None:
    cache, upstream = stage(DeadBackend(1 << 20)), Upstream()
    ctx = context(TEAM_A)
    completion = await cache.complete(ctx, upstream)
    assert completion["choices"][0]["message"]["content"] == "answer 1"
    assert ctx.cache_status == "miss" and cache.stats.errors == 2
