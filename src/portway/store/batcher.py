"""``BatchWriter``: rows queued by the hot path, written by a background task in batches.

Contract: ``submit`` never waits and never fails (a full queue drops its oldest row and
logs it); the task writes up to ``max_batch`` rows at a time, letting a small batch grow
for ``flush_interval`` first; a failing write is retried with backoff; ``close`` writes
everything queued (giving up after a few retries when the database is away). For rows
that must survive a crash, the ledger has its journal (``accounting.ledger``); this is
for rows a crash may lose, such as the request log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

RowT = TypeVar("RowT")
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


class BatchWriter(Generic[RowT]):
    def __init__(
        self,
        write: Callable[[Sequence[RowT]], Awaitable[object]],
        *,
        name: str,
        flush_interval: float,
        max_batch: int,
        max_queued: int,
    ) -> None:
        self._write = write
        self._name = name
        self._interval = flush_interval
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._queue: deque[RowT] = deque()
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.dropped = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self._name}-writer")

    def submit(self, row: RowT) -> None:
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.error("%s queue full: %d rows dropped so far", self._name, self.dropped)
        self._queue.append(row)
        if len(self._queue) == 1 or len(self._queue) >= self._max_batch:
            self._wakeup.set()

    async def flush(self) -> None:
        """Write the rows queued when it is called (readers call it to see the latest rows).

        Rows queued while it writes wait for the next flush: draining until the queue is
        empty never ended under steady traffic, and wrote a stream of tiny batches instead
        of one batch per interval.
        """
        async with self._lock:
            remaining = len(self._queue)
            while remaining > 0 and self._queue:
                count = min(remaining, len(self._queue), self._max_batch)
                remaining -= count
                batch = [self._queue.popleft() for _ in range(count)]
                if await self._write_batch(batch):
                    self.written += count

    async def close(self) -> None:
        self._closing = True
        self._closed.set()
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        while self._queue:
            await self.flush()

    async def _run(self) -> None:
        while not self._closing:
            await self._wakeup.wait()
            self._wakeup.clear()
            if len(self._queue) < self._max_batch and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), self._interval)
            await self.flush()

    async def _write_batch(self, batch: list[RowT]) -> bool:
        attempt = 0
        while True:
            try:
                await self._write(batch)
                return True
            except Exception:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                logger.exception("writing %d %s rows failed", len(batch), self._name)
                if self._closing and attempt >= 3:
                    logger.error("shutting down: %d %s rows not written", len(batch), self._name)
                    return False
                await asyncio.sleep(delay)
                attempt += 1
