"""The workers' lease renewal stops only what it asked about: a job claimed while a
renewal is in flight keeps executing (it was stopped, and left in progress until its lease
lapsed, before). Driven through the background responses' job store."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from portway.assistants.engine import Progress
from portway.assistants.workers import RunWorkers
from portway.store import Database
from portway.store.models.responses import ResponseRow
from portway.store.responses import ResponseStore
from tests.store.test_responses import new_response


class HeldRenewal(ResponseStore):
    """Holds its first renewal of anything until ``release`` is set."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.renewing = asyncio.Event()
        self.release = asyncio.Event()
        self.answers: list[dict[str, tuple[str, str | None]]] = []
        self.twice = asyncio.Event()  # two renewals of held jobs answered

    async def renew(
        self, owner: str, job_ids: Sequence[str], lease_until: float
    ) -> dict[str, tuple[str, str | None]]:
        if not job_ids:  # nothing held yet: not a renewal worth recording
            return await super().renew(owner, job_ids, lease_until)
        if not self.release.is_set():
            self.renewing.set()
            await self.release.wait()
        answer = await super().renew(owner, job_ids, lease_until)
        self.answers.append(answer)
        if len(self.answers) >= 2:
            self.twice.set()
        return answer


class Engine:
    """Executes until ``finish``; records what started and what was stopped."""

    def __init__(self) -> None:
        self.started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.stopped: set[str] = set()
        self.finish = asyncio.Event()

    async def execute(self, job: ResponseRow, progress: Progress) -> None:
        self.started[job.id].set()
        try:
            await self.finish.wait()
        except asyncio.CancelledError:
            self.stopped.add(job.id)
            raise


class Lifecycle:
    clock = staticmethod(time.time)

    async def cancel(self, job_id: str, partial_text: str | None = None, **_: Any) -> None:
        return None

    async def fail(self, job_id: str, code: Any, message: str, **_: Any) -> None:
        return None

    async def expire(self, job_id: str) -> None:
        return None


@dataclass
class Leases:
    poll_interval_seconds: float = 0.05
    lease_seconds: float = 30.0
    sweep_interval_seconds: float = 0.02
    max_attempts: int = 3


async def test_a_job_claimed_during_a_renewal_keeps_executing(database: Database) -> None:
    store = HeldRenewal(database)
    engine = Engine()
    workers: RunWorkers[ResponseRow] = RunWorkers(
        runs=store,
        engine=engine,
        lifecycle=Lifecycle(),
        config=Leases(),
        concurrency=4,
        owner="me",
        single_process=False,
        kind="response",
    )
    await workers.start()
    try:
        async with asyncio.timeout(10):
            first, second = new_response(), new_response()
            await store.save_response(first, [])
            workers.wake()
            await engine.started[first.id].wait()
            await store.renewing.wait()  # renewing [first] only

            await store.save_response(second, [])
            workers.wake()
            await engine.started[second.id].wait()
            store.release.set()
            await store.twice.wait()

            # The renewal in flight did not stop the second; the next one renewed it too.
            assert engine.stopped == set()
            assert set(store.answers[-1]) == {first.id, second.id}
            assert workers.holds(first.id) and workers.holds(second.id)
    finally:
        engine.finish.set()
        await workers.close()
