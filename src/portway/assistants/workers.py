"""Background workers: claim queued runs, execute them, keep their leases, recover and expire.

The machinery is not tied to runs: it drives any leased job whose store, engine and
lifecycle have the shapes of ``JobStore``, ``JobEngine`` and ``JobLifecycle`` (the
Batch API's batches use it too, see ``portway.batches.wiring``).

Contract:
- At most ``max_concurrent_runs`` runs execute in this process at a time (asyncio tasks).
- A worker claims a queued run in the database (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL), so several Portway processes share one queue. New runs wake the local
  claimer at once; runs queued by other processes are found by a poll every
  ``poll_interval_seconds``, backing off to ``IDLE_POLL_BACKOFF`` times that while the
  queue stays empty. A run created by a streaming request is reserved for the
  process serving the stream, which executes it itself.
- A held run carries a lease renewed every ``lease_seconds / 3``. A run whose lease lapsed
  (its process died) is taken over: resumed from its stored state (the unfinished model
  call is repeated) while it has attempts left (``max_attempts``), otherwise failed with
  ``server_error``. On SQLite, a single process owns the database, so at start-up every
  run left in progress is recovered at once. Nothing stays ``in_progress`` forever.
- Runs waiting for tool outputs past ``expires_at`` are expired by the sweeper.
- Cancellation reaches the executing task at once in this process, and within a lease
  renewal in another one. On shutdown, running runs are put back in the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from portway.assistants.engine import Progress

logger = logging.getLogger(__name__)

IDLE_POLL_BACKOFF = 4


def worker_id() -> str:
    """Unique per process start: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class Job(Protocol):
    """A leased row: a run, a batch."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...


JobT = TypeVar("JobT", bound=Job)


class JobStore(Protocol[JobT]):
    """Claims and leases in the database (see ``store.jobs.JobQueue``)."""

    async def claim_next(self, owner: str, now: float, lease_until: float) -> JobT | None: ...
    async def claim(
        self, job_id: str, owner: str, now: float, lease_until: float
    ) -> JobT | None: ...
    async def get_by_id(self, job_id: str) -> JobT | None: ...
    async def renew(
        self, owner: str, job_ids: Sequence[str], lease_until: float
    ) -> dict[str, tuple[str, str | None]]: ...
    async def lapsed(self, now: float, *, everything: bool = False) -> list[JobT]: ...
    async def due_to_expire(self, now: float) -> list[JobT]: ...
    async def take_over(
        self,
        job_id: str,
        previous_owner: str | None,
        owner: str,
        now: float,
        lease_until: float,
        *,
        force: bool = False,
    ) -> JobT | None: ...
    async def requeue(self, job_id: str, owner: str, *, refund_attempt: bool) -> JobT | None: ...


class JobEngine(Protocol[JobT]):
    async def execute(self, job: JobT, progress: Progress) -> None: ...


class JobLifecycle(Protocol):
    """How a job comes to rest when the workers stop it."""

    clock: Callable[[], float]

    async def cancel(
        self, job_id: str, partial_text: str | None = None, *, expected: Sequence[str] = ...
    ) -> Any: ...
    async def fail(
        self,
        job_id: str,
        code: Any,
        message: str,
        *,
        partial_text: str | None = None,
        expected: Sequence[str] = ...,
    ) -> Any: ...
    async def expire(self, job_id: str) -> Any: ...


class LeaseConfig(Protocol):
    @property
    def poll_interval_seconds(self) -> float: ...
    @property
    def lease_seconds(self) -> float: ...
    @property
    def sweep_interval_seconds(self) -> float: ...
    @property
    def max_attempts(self) -> int: ...


@dataclass
class _Execution:
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Why it must stop: a client cancelled the run, or the run is no longer ours
    # (finished, deleted with its thread, or taken over): then nothing is written.
    cancelled: bool = False
    progress: Progress = field(default_factory=Progress)

    def cancel(self) -> None:
        self.cancelled = True
        self.stop.set()


class RunWorkers(Generic[JobT]):
    """Executes leased jobs (``kind`` names them in logs): at most ``concurrency`` at once."""

    def __init__(
        self,
        *,
        runs: JobStore[JobT],
        engine: JobEngine[JobT],
        lifecycle: JobLifecycle,
        config: LeaseConfig,
        concurrency: int,
        owner: str,
        single_process: bool,
        kind: str = "run",
    ) -> None:
        self.owner = owner
        self._runs = runs
        self._engine = engine
        self._lifecycle = lifecycle
        self._config = config
        self._single_process = single_process
        self._clock: Callable[[], float] = lifecycle.clock
        self._kind = kind
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._draining = False
        self._executing: dict[str, _Execution] = {}
        self._reserved: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    def lease_until(self) -> float:
        return self._clock() + self._config.lease_seconds

    async def start(self) -> None:
        await self._recover(everything=self._single_process)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name=f"{self._kind}-claim"),
            asyncio.create_task(self._maintenance_loop(), name=f"{self._kind}-maintenance"),
        ]

    def drain(self) -> None:
        """Claim nothing more (shutdown began); what executes here goes on until ``close``."""
        self._draining = True

    async def close(self) -> None:
        """Stop the loops between two database calls, then interrupt the running runs
        (they go back to the queue)."""
        self._stopping.set()
        _, unfinished = await asyncio.wait(self._loops, timeout=5) if self._loops else ((), ())
        for task in (*unfinished, *self._tasks):
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)

    async def _pause(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleep ``seconds``, or less if we are stopping or ``wake`` is set."""
        events = [self._stopping] if wake is None else [self._stopping, wake]
        waiters = [asyncio.create_task(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # Entry points -------------------------------------------------------------------

    def wake(self) -> None:
        """A run was queued: look for work now rather than at the next poll."""
        self._wake.set()

    def run_reserved(self, run_id: str) -> None:
        """Execute a queued run this process reserved (``owner``) for its own stream."""
        self._reserved.add(run_id)
        self._spawn(self._execute_reserved(run_id))

    def request_cancel(self, run_id: str) -> bool:
        """Stop the run if it executes here; False when it does not."""
        execution = self._executing.get(run_id)
        if execution is None:
            return False
        execution.cancel()
        return True

    def holds(self, run_id: str) -> bool:
        return run_id in self._executing or run_id in self._reserved

    # Execution ----------------------------------------------------------------------

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _claim_loop(self) -> None:
        idle_polls = 0
        while not self._stopping.is_set():
            if self._draining:
                await self._pause(self._config.poll_interval_seconds)
                continue
            await self._slots.acquire()
            self._wake.clear()
            try:
                run = await self._runs.claim_next(self.owner, self._clock(), self.lease_until())
            except Exception:
                self._slots.release()
                logger.exception(
                    "claiming a queued %s failed; retrying after the poll interval", self._kind
                )
                await self._pause(self._config.poll_interval_seconds)
                continue
            if run is None:
                self._slots.release()
                # An idle queue is polled less and less often: a job this process queues
                # wakes it at once, so only other processes' overflow waits for a poll.
                backoff = min(2**idle_polls, IDLE_POLL_BACKOFF)
                idle_polls += 1
                await self._pause(self._config.poll_interval_seconds * backoff, self._wake)
                continue
            idle_polls = 0
            self._spawn(self._supervise(run))

    async def _execute_reserved(self, run_id: str) -> None:
        try:
            await self._slots.acquire()
        finally:
            self._reserved.discard(run_id)
        try:
            run = await self._runs.claim(run_id, self.owner, self._clock(), self.lease_until())
        except BaseException:
            self._slots.release()
            raise
        if run is None:
            self._slots.release()
            current = await self._runs.get_by_id(run_id)
            if current is not None and current.status == "cancelling":
                # Cancelled before it started.
                await self._lifecycle.cancel(run_id, expected=("cancelling",))
            return
        await self._supervise(run)

    async def _supervise(self, run: JobT) -> None:
        """Execute a claimed run (a slot is held); stop it on cancel, release it on shutdown."""
        execution = _Execution()
        self._executing[run.id] = execution
        drive = asyncio.create_task(self._engine.execute(run, execution.progress))
        stopped = asyncio.create_task(execution.stop.wait())
        try:
            await asyncio.wait({drive, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not drive.done():
                drive.cancel()
                await asyncio.wait({drive})
                if execution.cancelled:
                    await self._lifecycle.cancel(
                        run.id, partial_text=execution.progress.text, expected=("cancelling",)
                    )
            elif drive.exception() is not None:
                logger.error("%s %s failed", self._kind, run.id, exc_info=drive.exception())
                await self._lifecycle.fail(
                    run.id,
                    "server_error",
                    f"The server had an error while processing the {self._kind}.",
                    partial_text=execution.progress.text,
                    expected=("in_progress",),
                )
        except asyncio.CancelledError:
            drive.cancel()
            await asyncio.wait({drive})
            # Shutting down: hand the run back so a next start (or another process) resumes it.
            await asyncio.shield(self._runs.requeue(run.id, self.owner, refund_attempt=True))
            raise
        finally:
            stopped.cancel()
            self._executing.pop(run.id, None)
            self._slots.release()

    # Leases, expiry, recovery --------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        interval = min(self._config.sweep_interval_seconds, self._config.lease_seconds / 3)
        # A lease lapses only ``lease_seconds`` after its last renewal: looking for lapsed
        # ones more often than a third of that finds nothing new.
        recovery_interval = self._config.lease_seconds / 3
        next_recovery = self._clock() + recovery_interval
        while not self._stopping.is_set():
            await self._pause(interval)
            if self._stopping.is_set():
                return
            try:
                await self._renew_leases()
                await self._expire_waiting()
                if self._clock() >= next_recovery:
                    next_recovery = self._clock() + recovery_interval
                    await self._recover(everything=False)
            except Exception:
                logger.exception("%s maintenance failed; retrying in %.1fs", self._kind, interval)

    async def _renew_leases(self) -> None:
        held = [*self._executing, *self._reserved]
        statuses = await self._runs.renew(self.owner, held, self.lease_until())
        # Only what was renewed: a run claimed during the renewal is not in its answer.
        for run_id in held:
            execution = self._executing.get(run_id)
            if execution is None:
                continue
            found = statuses.get(run_id)
            if found is None:
                execution.stop.set()  # deleted with its thread: stop, nothing to write
                continue
            status, holder = found
            if status == "cancelling":  # cancelled through another process
                execution.cancel()
            elif status == "in_progress" and holder != self.owner:
                execution.stop.set()  # taken over by another worker
            # Otherwise the run just came to rest and its task is ending by itself.

    async def _expire_waiting(self) -> None:
        for run in await self._runs.due_to_expire(self._clock()):
            await self._lifecycle.expire(run.id)

    async def _recover(self, *, everything: bool) -> None:
        now = self._clock()
        for lapsed in await self._runs.lapsed(now, everything=everything):
            if lapsed.owner == self.owner and self.holds(lapsed.id):
                continue
            run = await self._runs.take_over(
                lapsed.id, lapsed.owner, self.owner, now, self.lease_until(), force=everything
            )
            if run is None:
                continue
            if run.status == "cancelling":
                await self._lifecycle.cancel(run.id)
            elif run.attempts >= self._config.max_attempts:
                logger.warning(
                    "%s %s was interrupted %d times; failing it", self._kind, run.id, run.attempts
                )
                await self._lifecycle.fail(
                    run.id,
                    "server_error",
                    f"The {self._kind} was interrupted (its server stopped) "
                    "and could not be resumed.",
                    expected=("in_progress",),
                )
            else:
                logger.info("resuming %s %s interrupted by a stopped server", self._kind, run.id)
                await self._runs.requeue(run.id, self.owner, refund_attempt=False)
                self.wake()
