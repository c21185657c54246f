"""The usage ledger writer: rows are queued by requests and committed in batches.

Durability contract (``ledger.durability``):
- ``sync`` (default): group commit. A request's row is committed (with its budget
  settlement) before its response is acknowledged: the JSON body, or the end of a stream
  (``data: [DONE]``), is sent only after the commit. Rows of concurrent requests share
  one transaction. A process killed with SIGKILL therefore loses no row of a request
  whose response the client received in full; it may lose rows of requests in flight.
  (SQLite runs WAL with ``synchronous=NORMAL``: a commit survives a killed process, not
  necessarily a power cut.)
- ``batch``: requests never wait; rows are committed every ``flush_interval_ms`` (or
  when ``max_batch`` rows are queued). A SIGKILL loses at most the rows of the last
  ``flush_interval_ms`` plus the batch being written.
In both modes ``close()`` (graceful shutdown) writes everything still queued. A failing
database is retried with backoff; waiting requests give up after ``WAIT_TIMEOUT`` s and
their rows stay queued (up to ``MAX_QUEUED`` rows, then the oldest are dropped, loudly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import asdict, dataclass, field

from portway.config import LedgerConfig
from portway.store.budgets import Settlement
from portway.store.usage import UsageRepository

logger = logging.getLogger(__name__)

WAIT_TIMEOUT = 5.0
MAX_QUEUED = 200_000
_RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass(slots=True)
class UsageRecord:
    """One request as the ledger stores it (see ``store.models.UsageRow``)."""

    created_at: float
    request_id: str
    endpoint: str
    model: str
    latency_ms: float
    status: int
    key_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    deployment: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    usage_estimated: bool = False
    cost_nanos: int = 0
    cost_saved_nanos: int = 0
    ttft_ms: float | None = None
    error_code: str | None = None
    cache_status: str | None = None
    attempts: int = 0
    stream: bool = False
    settlements: tuple[Settlement, ...] = field(default=())

    def row(self) -> dict[str, object]:
        values = asdict(self)
        del values["settlements"]
        return values


_Entry = tuple[UsageRecord | None, tuple[Settlement, ...], "asyncio.Future[None] | None"]


class LedgerWriter:
    """Background batch writer; ``submit`` is cheap and never touches the database."""

    def __init__(self, usage: UsageRepository, config: LedgerConfig) -> None:
        self._usage = usage
        self._config = config
        self._queue: deque[_Entry] = deque()
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0

    @property
    def sync(self) -> bool:
        return self._config.durability == "sync"

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def close(self) -> None:
        """Write everything queued, then stop."""
        self._closing = True
        self._closed.set()
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    def submit(
        self, record: UsageRecord | None, settlements: tuple[Settlement, ...] = ()
    ) -> asyncio.Future[None] | None:
        """Queue a row (None: settle budgets only); in sync mode, a future for its commit."""
        if record is None and not settlements:
            return None
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
            logger.error("usage ledger queue full (%d rows): dropped the oldest row", MAX_QUEUED)
        future = asyncio.get_running_loop().create_future() if self.sync else None
        self._queue.append((record, settlements, future))
        self._wakeup.set()
        return future

    async def wait(self, future: asyncio.Future[None]) -> None:
        """Wait for a sync commit, bounded so a broken database cannot hang requests."""
        try:
            await asyncio.wait_for(asyncio.shield(future), WAIT_TIMEOUT)
        except TimeoutError:
            logger.warning("usage row not committed within %.0f s; still queued", WAIT_TIMEOUT)

    async def _run(self) -> None:
        interval = self._config.flush_interval_ms / 1000
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self.sync and not self._closing and len(self._queue) < self._config.max_batch:
                # Let the batch grow for one interval; shutdown cuts the wait short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), interval)
            await self._drain()
            if self._closing and not self._queue:
                return

    async def _drain(self) -> None:
        while self._queue:
            count = min(len(self._queue), self._config.max_batch)
            batch = [self._queue[i] for i in range(count)]
            await self._write(batch)
            for _ in range(count):
                self._queue.popleft()
            for _record, _settlements, future in batch:
                if future is not None and not future.done():
                    future.set_result(None)
            self.written += count

    async def _write(self, batch: list[_Entry]) -> None:
        rows = [record.row() for record, _s, _f in batch if record is not None]
        settlements = [s for _r, group, _f in batch for s in group]
        attempt = 0
        while True:
            try:
                await self._usage.append(rows, settlements)
                return
            except Exception:
                delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
                logger.exception(
                    "writing %d usage rows failed; retrying in %.1f s", len(rows), delay
                )
                if self._closing and attempt >= 3:
                    logger.error("shutting down: %d usage rows could not be written", len(rows))
                    return
                await asyncio.sleep(delay)
                attempt += 1
