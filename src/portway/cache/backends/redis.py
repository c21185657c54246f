"""The Redis backend: one cache shared by every Portway process that points at the server.

Entries are plain string keys ``<prefix>e:<namespace>:<model>:<digest>`` (namespace and
model URL-quoted, so they hold no ``:`` or glob characters) with a Redis expiry of
``keep_for``; purges and statistics walk the keyspace with ``SCAN``, never ``KEYS``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from redis.asyncio import Redis

from portway.cache.backends.base import BackendUsage
from portway.cache.keys import EntryKey

SCAN_BATCH = 1000
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)


class RedisBackend:
    name = "redis"

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._entries = prefix + "e:"

    async def start(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        """The client is shared and closed by its owner."""

    def _name(self, key: EntryKey) -> str:
        return self._entries + key.text

    async def get(self, key: EntryKey) -> bytes | None:
        return await self._client.get(self._name(key))  # type: ignore[no-any-return]

    async def set(self, key: EntryKey, value: bytes, keep_for: float) -> None:
        await self._client.set(self._name(key), value, px=max(1, int(keep_for * 1000)))

    def _pattern(self, namespace: str | None, model: str | None) -> str:
        namespace_part = "*" if namespace is None else quote(namespace, safe="")
        model_part = "*" if model is None else quote(model, safe="")
        return f"{glob_escape(self._entries)}{namespace_part}:{model_part}:*"

    async def purge(self, namespace: str | None, model: str | None) -> int:
        deleted = 0
        batch: list[bytes] = []
        async for name in self._client.scan_iter(
            match=self._pattern(namespace, model), count=SCAN_BATCH
        ):
            batch.append(name)
            if len(batch) >= SCAN_BATCH:
                deleted += await self._client.unlink(*batch)
                batch = []
        if batch:
            deleted += await self._client.unlink(*batch)
        return deleted

    async def usage(self) -> BackendUsage:
        entries = 0
        size = 0
        batch: list[bytes] = []

        async def measure(names: list[bytes]) -> int:
            async with self._client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.strlen(name)
                lengths = await pipe.execute()
            return sum(lengths) + sum(len(name) for name in names)

        async for name in self._client.scan_iter(match=self._pattern(None, None), count=SCAN_BATCH):
            batch.append(name)
            entries += 1
            if len(batch) >= SCAN_BATCH:
                size += await measure(batch)
                batch = []
        if batch:
            size += await measure(batch)
        return BackendUsage(entries=entries, bytes=size)
