"""Background responses: claimed from the database, executed here, leased, recovered.

Contract (the run workers' scheme, for responses):
- At most ``assistants.max_concurrent_runs`` background responses execute in this
  process at a time. A worker claims the oldest queued one in the database (``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL), so several Portway processes share one queue; a new one
  wakes the local claimer at once, others are found every ``poll_interval_seconds``.
- A held response carries a lease renewed every ``lease_seconds / 3``. One whose lease
  lapsed (its process died) is put back in the queue and started again (its stored
  events start over) while it has attempts left (``max_attempts``), else it fails with
  ``server_error``. On SQLite one process owns the database, so at start-up everything
  left in progress is recovered at once.
- A cancelled response stops at once in this process, and within a lease renewal in
  another. On shutdown, executing responses go back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from portway.config import AssistantsConfig
from portway.store.models.responses import ResponseRow
from portway.store.responses import ResponseStore

logger = logging.getLogger(__name__)

Runner = Callable[[ResponseRow], Awaitable[None]]
Failer = Callable[[str, str | None, str], Awaitable[None]]  # (response id, its holder, why)


class ResponseWorkers:
    def __init__(
        self,
        *,
        store: ResponseStore,
        run: Runner,
        fail: Failer,
        config: AssistantsConfig,
        owner: str,
        single_process: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.owner = owner
        self._store = store
        self._run = run
        self._fail = fail
        self._config = config
        self._single_process = single_process
        self._clock = clock
        self._slots = asyncio.Semaphore(config.max_concurrent_runs)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._draining = False
        self._executing: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    def lease_until(self) -> float:
        return self._clock() + self._config.lease_seconds

    async def start(self) -> None:
        await self._recover(everything=self._single_process)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="responses-claim"),
            asyncio.create_task(self._maintenance_loop(), name="responses-maintenance"),
        ]

    def drain(self) -> None:
        """Claim nothing more (shutdown began); what executes here goes on until ``close``."""
        self._draining = True

    async def close(self) -> None:
        """Stop the loops, then interrupt executing responses (they go back to the queue)."""
        self._stopping.set()
        _, unfinished = await asyncio.wait(self._loops, timeout=5) if self._loops else ((), ())
        for task in (*unfinished, *self._tasks):
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)

    def wake(self) -> None:
        """A response was queued: look for work now rather than at the next poll."""
        self._wake.set()

    def stop(self, response_id: str) -> bool:
        """Stop the response if it executes here (it was cancelled); False when it does not."""
        task = self._executing.get(response_id)
        if task is None:
            return False
        task.cancel()
        return True

    async def _pause(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        events = [self._stopping] if wake is None else [self._stopping, wake]
        waiters = [asyncio.create_task(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            if self._draining:
                await self._pause(self._config.poll_interval_seconds)
                continue
            await self._slots.acquire()
            self._wake.clear()
            try:
                row = await self._store.claim_next(self.owner, self.lease_until())
            except Exception:
                self._slots.release()
                logger.exception("claiming a queued response failed; retrying after the poll")
                await self._pause(self._config.poll_interval_seconds)
                continue
            if row is None:
                self._slots.release()
                await self._pause(self._config.poll_interval_seconds, self._wake)
                continue
            task = asyncio.create_task(self._supervise(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _supervise(self, row: ResponseRow) -> None:
        """Execute a claimed response (a slot is held); requeue it on shutdown."""
        drive = asyncio.create_task(self._run(row))
        self._executing[row.id] = drive
        try:
            await asyncio.wait({drive})
            if not drive.cancelled() and drive.exception() is not None:
                logger.error("response %s failed", row.id, exc_info=drive.exception())
                await self._fail(
                    row.id, self.owner, "The server had an error while processing the response."
                )
        except asyncio.CancelledError:
            drive.cancel()
            await asyncio.wait({drive})
            # Shutting down: hand it back so a next start (or another process) runs it.
            await asyncio.shield(self._store.requeue(row.id, self.owner, refund=True))
            raise
        finally:
            self._executing.pop(row.id, None)
            self._slots.release()

    async def _maintenance_loop(self) -> None:
        interval = min(self._config.sweep_interval_seconds, self._config.lease_seconds / 3)
        while not self._stopping.is_set():
            await self._pause(interval)
            if self._stopping.is_set():
                return
            try:
                await self._renew_leases()
                await self._recover(everything=False)
            except Exception:
                logger.exception("response maintenance failed; retrying in %.1fs", interval)

    async def _renew_leases(self) -> None:
        held = list(self._executing)
        still = await self._store.renew(self.owner, held, self.lease_until())
        for response_id in held:
            if response_id not in still:  # cancelled, deleted or taken over elsewhere
                self.stop(response_id)

    async def _recover(self, *, everything: bool) -> None:
        for lapsed in await self._store.lapsed(self._clock(), everything=everything):
            if lapsed.id in self._executing:
                continue
            if lapsed.attempts >= self._config.max_attempts:
                logger.warning(
                    "response %s was interrupted %d times; failing it", lapsed.id, lapsed.attempts
                )
                await self._fail(
                    lapsed.id,
                    lapsed.owner,
                    "The response was interrupted (its server stopped) and could not be resumed.",
                )
            elif await self._store.requeue(lapsed.id, lapsed.owner):
                logger.info("resuming response %s interrupted by a stopped server", lapsed.id)
                self.wake()
