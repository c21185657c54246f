"""The shared semantic index: a Redis stream of vectors, mirrored into each process's matrix.

Contract: every process appends its new vectors (and purges) to one Redis stream and,
before each search, reads what other processes appended since its last read (one
``XREAD`` round trip, usually empty), so all processes answer from the same set of
vectors while the search itself stays an in-memory matrix product. The stream is
trimmed to about ``max_entries`` vectors; a process that starts later replays it.
Plain Redis is enough: no search module is needed.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from redis.asyncio import Redis

from portway.cache.semantic.index import Match, MatrixIndex, Partition, Vector

logger = logging.getLogger(__name__)

READ_BATCH = 1000


class RedisStreamIndex:
    name = "redis"

    def __init__(self, client: Redis, prefix: str, max_entries: int) -> None:
        self._client = client
        self._stream = prefix + "semantic"
        self._local = MatrixIndex(max_entries)
        self._max_entries = max_entries
        self._last_id = b"0-0"
        self._sync_lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._local)

    async def start(self) -> None:
        await self.sync()

    async def close(self) -> None:
        await self._local.close()

    async def sync(self) -> None:
        """Apply what was appended to the stream since the last read."""
        async with self._sync_lock:
            while True:
                batches = await self._client.xread({self._stream: self._last_id}, count=READ_BATCH)
                if not batches:
                    return
                entries = batches[0][1]
                for entry_id, fields in entries:
                    self._apply(fields)
                    self._last_id = entry_id
                if len(entries) < READ_BATCH:
                    return

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        operation = fields.get(b"op")
        if operation == b"add":
            partition = (
                fields[b"ns"].decode(),
                fields[b"model"].decode(),
                fields[b"ctx"].decode(),
            )
            vector = np.frombuffer(fields[b"vec"], dtype=np.float32)
            self._local.insert(partition, vector, fields[b"key"].decode())
        elif operation == b"purge":
            namespace = fields[b"ns"].decode() if b"ns" in fields else None
            model = fields[b"model"].decode() if b"model" in fields else None
            self._local.drop(namespace, model)
        else:
            logger.warning("semantic cache: ignored an unknown stream entry %r", operation)

    async def add(self, partition: Partition, vector: Vector, key: str) -> None:
        namespace, model, context = partition
        await self._client.xadd(
            self._stream,
            {
                "op": "add",
                "ns": namespace,
                "model": model,
                "ctx": context,
                "key": key,
                "vec": np.asarray(vector, dtype=np.float32).tobytes(),
            },
            maxlen=self._max_entries,
            approximate=True,
        )

    async def remove(self, key: str) -> None:
        # Local only: other processes find the entry gone on their own when they hit it.
        self._local.discard(key)

    async def purge(self, namespace: str | None, model: str | None) -> int:
        fields: dict[str, str] = {"op": "purge"}
        if namespace is not None:
            fields["ns"] = namespace
        if model is not None:
            fields["model"] = model
        await self.sync()
        before = len(self._local)
        await self._client.xadd(self._stream, fields)  # type: ignore[arg-type]
        await self.sync()
        return before - len(self._local)

    async def search(
        self, partition: Partition, query: Vector, threshold: float, limit: int = 3
    ) -> list[Match]:
        await self.sync()
        return await self._local.search(partition, query, threshold, limit)
