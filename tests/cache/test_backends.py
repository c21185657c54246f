"""Every backend honours the same contract; the memory backend stays under its byte bound."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from portway.cache.backends.base import CacheBackend
from portway.cache.backends.memory import SLOT_OVERHEAD_BYTES, MemoryBackend
from portway.cache.backends.redis import RedisBackend
from portway.cache.backends.sqlite import SQLiteBackend
from portway.cache.keys import EntryKey
from tests.conftest import service_unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_client() -> Redis:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError):
        await client.aclose()
        service_unavailable("Redis is not reachable at 127.0.0.1:6379")
    return client


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CacheBackend]:
    client = None
    store: CacheBackend
    if request.param == "memory":
        store = MemoryBackend(max_bytes=1 << 20)
    elif request.param == "sqlite":
        store = SQLiteBackend(str(tmp_path / "cache.db"))
    else:
        client = await redis_client()
        store = RedisBackend(client, f"portway-test:{uuid.uuid4().hex}:")
    await store.start()
    yield store
    await store.purge(None, None)
    await store.close()
    if client is not None:
        await client.aclose()


def key(namespace: str, model: str, digest: str = "d1") -> EntryKey:
    return EntryKey(namespace, model, digest)


async def test_set_get_and_overwrite(backend: CacheBackend) -> None:
    assert await backend.get(key("t", "m")) is None
    await backend.set(key("t", "m"), b"one", keep_for=60)
    assert await backend.get(key("t", "m")) == b"one"
    await backend.set(key("t", "m"), b"two", keep_for=60)
    assert await backend.get(key("t", "m")) == b"two"
    usage = await backend.usage()
    assert usage.entries == 1 and usage.bytes >= 3


async def test_entries_are_dropped_after_keep_for(backend: CacheBackend) -> None:
    await backend.set(key("t", "m"), b"short", keep_for=0.05)
    await backend.set(key("t", "m", "d2"), b"long", keep_for=60)
    await asyncio.sleep(0.1)
    assert await backend.get(key("t", "m")) is None
    assert await backend.get(key("t", "m", "d2")) == b"long"


async def test_purge_by_namespace_and_model(backend: CacheBackend) -> None:
    # Names with the characters a key format could trip over.
    odd_namespace, odd_model = "team:a*/[x]", "org/model:latest?"
    for namespace in ("team-b", odd_namespace):
        for model in ("m1", odd_model):
            await backend.set(key(namespace, model), b"v", keep_for=60)
    assert await backend.purge(odd_namespace, odd_model) == 1
    assert await backend.get(key(odd_namespace, odd_model)) is None
    assert await backend.get(key(odd_namespace, "m1")) == b"v"
    assert await backend.purge(None, "m1") == 2
    assert await backend.purge("team-b", None) == 1
    assert (await backend.usage()).entries == 0


async def test_memory_backend_evicts_least_recently_used_under_its_bound() -> None:
    value = b"x" * 1000
    slot = len(key("t", "m", "k00").text) + len(value) + SLOT_OVERHEAD_BYTES
    store = MemoryBackend(max_bytes=slot * 3)
    for digest in ("k00", "k01", "k02"):
        await store.set(key("t", "m", digest), value, keep_for=60)
    assert await store.get(key("t", "m", "k00")) == value  # k00 is now the most recent
    await store.set(key("t", "m", "k03"), value, keep_for=60)
    assert await store.get(key("t", "m", "k01")) is None
    assert await store.get(key("t", "m", "k00")) == value
    usage = await store.usage()
    assert usage.entries == 3 and usage.bytes <= store.max_bytes
    assert store.evictions == 1
    await store.set(key("t", "m", "huge"), b"y" * (slot * 4), keep_for=60)
    assert await store.get(key("t", "m", "huge")) is None
    assert (await store.usage()).entries == 3


async def test_sqlite_entries_survive_a_restart(tmp_path: Path) -> None:
    path = f"sqlite:///{tmp_path}/nested/cache.db"
    first = SQLiteBackend(path)
    await first.start()
    await first.set(key("t", "m"), b"kept", keep_for=60)
    await first.close()
    second = SQLiteBackend(path)
    await second.start()
    assert await second.get(key("t", "m")) == b"kept"
    await second.close()
