"""The usage ledger writer: one row per request, committed in batches off the hot path.

Durability contract (``ledger.durability``):
- ``journal`` (default): before a response is released, its row is appended to a local
  journal file (one ``write(2)``, see ``accounting.journal``); rows reach the database in
  batches every ``flush_interval_ms``. A process killed with SIGKILL loses no row of a
  request whose response the client received in full (for streams: up to
  ``data: [DONE]``): the row is in the journal, and the next Portway process to start
  with the same ``ledger.journal_dir`` (or a running one, within ``RECOVERY_INTERVAL``
  seconds) commits it exactly once (rows carry a unique ``record_id``). The journal must
  be on a disk that outlives the process (not a container's throw-away layer).
- ``commit``: group commit; the response waits until its row is committed to the
  database itself. Same guarantee without a local journal, at the price of a database
  commit on every response (≈1-2 ms on SQLite).
- ``batch``: requests never wait and nothing is journaled; a SIGKILL loses at most the
  rows of the last ``flush_interval_ms`` plus the batch being written.
In every mode ``close()`` (graceful shutdown) writes everything still queued. A failing
database is retried with backoff; rows it could not write by shutdown stay in the journal.

Budget settlements ride in the rows and are committed with them (exactly once, also on
recovery); ``on_committed`` hears of each batch's settlements after its commit, and
``on_recovered`` of the instances whose whole journal was recovered (their budget leases
can then be released: see ``accounting.leases``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from portway.accounting.journal import LedgerJournal, Segment, instance_of
from portway.config import LedgerConfig
from portway.store.batcher import RETRY_DELAYS
from portway.store.budgets import Settlement
from portway.store.usage import UsageRepository

logger = logging.getLogger(__name__)

WAIT_TIMEOUT = 5.0
MAX_QUEUED = 200_000
RECOVERY_INTERVAL = 10.0


class _RecordIds:
    """Globally unique ids without a syscall each: 64 random bits per process + a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_record_id = _RecordIds()


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
    context_strategy: str | None = None
    context_cost_nanos: int = 0
    attempts: int = 0
    stream: bool = False
    settlements: tuple[Settlement, ...] = field(default=())
    record_id: str = field(default_factory=new_record_id)
    stored: bool = True  # False: the row only carries budget settlements

    def row(self) -> dict[str, object]:
        # Field by field: dataclasses.asdict deep-copies and costs more than the insert.
        return {name: getattr(self, name) for name in _ROW_FIELDS}

    def to_json(self) -> bytes:
        return orjson.dumps(self) + b"\n"

    @classmethod
    def from_json(cls, line: bytes) -> UsageRecord:
        data: dict[str, Any] = orjson.loads(line)
        # orjson writes dataclasses (the record and its settlements) as JSON objects.
        data["settlements"] = tuple(Settlement(**item) for item in data.get("settlements", ()))
        return cls(**data)


_ROW_FIELDS = tuple(f.name for f in fields(UsageRecord) if f.name not in ("settlements", "stored"))


OnCommitted = Callable[[Sequence[Settlement]], None]
OnRecovered = Callable[[Sequence[str]], Awaitable[object]]


def default_journal_dir(database_url: str) -> Path:
    """Next to the SQLite file, else ``./.portway/ledger-journal``."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and ":memory:" not in database_url:
        return Path(database_url[len(prefix) :]).parent / "ledger-journal"
    return Path(".portway") / "ledger-journal"


class LedgerWriter:
    """``submit`` is cheap; a background task commits rows in batches."""

    def __init__(
        self,
        usage: UsageRepository,
        config: LedgerConfig,
        journal_dir: Path | None = None,
        *,
        instance: str | None = None,
        on_committed: OnCommitted | None = None,
        on_recovered: OnRecovered | None = None,
    ) -> None:
        self._usage = usage
        self._config = config
        self._mode = config.durability
        self._journal = (
            LedgerJournal(journal_dir, instance)
            if self._mode == "journal" and journal_dir
            else None
        )
        self._on_committed = on_committed
        self._on_recovered = on_recovered
        self._queue: deque[tuple[UsageRecord, asyncio.Future[None] | None]] = deque()
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._next_recovery = 0.0
        self.written = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        if self._journal is not None:
            self._journal.open()
            await self._recover()
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
        if self._journal is not None:
            self._journal.close()

    def submit(self, record: UsageRecord) -> asyncio.Future[None] | None:
        """Queue a row; in ``commit`` mode, a future that resolves once it is committed."""
        if not record.stored and not record.settlements:
            return None
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
            logger.error("usage ledger queue full (%d rows): dropped the oldest row", MAX_QUEUED)
        future = None
        if self._journal is not None:
            self._journal.append(record.to_json())
        elif self._mode == "commit":
            future = asyncio.get_running_loop().create_future()
        self._queue.append((record, future))
        self._wakeup.set()
        return future

    async def wait(self, future: asyncio.Future[None]) -> None:
        """Wait for a commit, bounded so a broken database cannot hang requests."""
        try:
            await asyncio.wait_for(asyncio.shield(future), WAIT_TIMEOUT)
        except TimeoutError:
            logger.warning("usage row not committed within %.0f s; still queued", WAIT_TIMEOUT)

    async def _run(self) -> None:
        interval = self._config.flush_interval_ms / 1000
        while True:
            if self._journal is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), RECOVERY_INTERVAL)
            else:
                await self._wakeup.wait()
            self._wakeup.clear()
            small = len(self._queue) < self._config.max_batch
            if self._mode != "commit" and not self._closing and small:
                # Let the batch grow for one interval; shutdown cuts the wait short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), interval)
            await self.flush()
            if self._journal is not None and time.monotonic() >= self._next_recovery:
                await self._recover()
            if self._closing and not self._queue:
                return

    async def flush(self) -> None:
        """Commit everything queued now (reports call it to include the latest rows)."""
        async with self._drain_lock:
            await self._drain()

    async def _drain(self) -> None:
        if self._journal is not None:
            # Everything queued so far is in the current segment: seal it, commit, delete.
            segment = self._journal.seal()
            count = len(self._queue)
            if segment is None or count == 0:
                return
            records = [self._queue.popleft()[0] for _ in range(count)]
            if not await self._write(records):
                return  # shutting down with the database away: the segment stays on disk
            self._journal.discard(segment)
            self._committed(records)
            self.written += count
            return
        # ``commit`` keeps going while requests wait for their rows (group commit);
        # ``batch`` writes what was queued when it began, the rest after the next interval.
        remaining = len(self._queue)
        while self._queue and (self._mode == "commit" or remaining > 0):
            count = min(len(self._queue), self._config.max_batch)
            remaining -= count
            batch = [self._queue[i] for i in range(count)]
            written = await self._write([record for record, _future in batch])
            for _ in range(count):
                self._queue.popleft()
            for _record, future in batch:
                if future is not None and not future.done():
                    future.set_result(None)
            if written:
                self._committed([record for record, _future in batch])
                self.written += count

    def _committed(self, records: list[UsageRecord]) -> None:
        if self._on_committed is not None:
            settlements = [s for record in records for s in record.settlements]
            if settlements:
                self._on_committed(settlements)

    async def _write(self, records: list[UsageRecord], *, recovering: bool = False) -> bool:
        """Commit rows (and their settlements); False if given up on at shutdown."""
        rows = [record.row() for record in records if record.stored]
        attempt = 0
        while True:
            try:
                if recovering:
                    await self._usage.append_missing(
                        rows, {record.record_id: record.settlements for record in records}
                    )
                else:
                    settlements = [s for record in records for s in record.settlements]
                    await self._usage.append(rows, settlements)
                return True
            except Exception:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                logger.exception("writing %d usage rows failed; retry in %.1f s", len(rows), delay)
                if self._closing and attempt >= 3:
                    logger.error("shutting down: %d usage rows were not written", len(rows))
                    return False
                await asyncio.sleep(delay)
                attempt += 1

    async def _recover(self) -> None:
        """Commit the journal segments of dead processes (exactly once), then delete them."""
        assert self._journal is not None
        self._next_recovery = time.monotonic() + RECOVERY_INTERVAL
        orphans = self._journal.orphans()
        complete = self._journal.all_orphaned(orphans)
        for segment in orphans:
            records = self._parse(segment)
            if records and not await self._write(records, recovering=True):
                complete.discard(instance_of(segment.path))
                os.close(segment.fd)  # not committed: leave it for the next recovery
                continue
            if records:
                logger.warning(
                    "recovered %d usage rows from the journal of a stopped process (%s)",
                    len(records),
                    segment.path.name,
                )
            self._journal.discard(segment)
        if complete and self._on_recovered is not None:
            await self._on_recovered(sorted(complete))

    @staticmethod
    def _parse(segment: Segment) -> list[UsageRecord]:
        records = []
        for line in LedgerJournal.read(segment):
            try:
                records.append(UsageRecord.from_json(line))
            except (orjson.JSONDecodeError, TypeError, ValueError):
                logger.error("skipping a damaged usage journal line in %s", segment.path.name)
        return records
