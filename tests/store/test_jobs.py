"""The generic job queue on SQLite and PostgreSQL: claim order, holders, leases, recovery
and hand-back, driven over the sketches table with kinds declared here."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portway.store import Database
from portway.store.jobs import JobKind, JobQueue
from portway.store.models.sketches import SketchRow

QUEUED = JobKind(waiting=("queued",), held=("in_progress", "cancelling"))
# Waits and runs in the same statuses (like batches): held means having a holder.
IN_PLACE = JobKind(
    waiting=("active",), held=("active", "cancelling"), running=None, lapsed_needs_holder=True
)
RESERVABLE = JobKind(waiting=("queued",), held=("in_progress",), reservable=True)
HELD_ONLY = JobKind(waiting=("queued",), held=("in_progress",), renew_answers_held_only=True)


def _queue(database: Database, kind: JobKind) -> JobQueue[SketchRow]:
    return JobQueue(database, SketchRow, kind)


async def _add(database: Database, status: str = "queued", **extra: Any) -> SketchRow:
    now = time.time()
    row = SketchRow(
        id="sketch_" + secrets.token_hex(6),
        tenant="t",
        status=status,
        model="m",
        description="d",
        created_at=now,
        updated_at=now,
        principal={"kind": "anonymous"},
        attempts=0,
        **extra,
    )
    async with database.session() as session:
        session.add(row)
    return row


async def test_claims_take_the_oldest_waiting_job_nobody_holds(database: Database) -> None:
    queue = _queue(database, QUEUED)
    now = time.time()
    await _add(database, status="in_progress", owner="busy", lease_until=now + 60)
    await _add(database, status="queued", owner="someone", lease_until=now + 60)
    await _add(database, status="completed")
    first, second = await _add(database), await _add(database)

    taken = [await queue.claim_next(f"w-{i}", now, now + 30) for i in range(3)]

    assert [job.id if job else None for job in taken] == [first.id, second.id, None]
    assert taken[0] is not None
    assert (taken[0].status, taken[0].owner, taken[0].attempts) == ("in_progress", "w-0", 1)
    assert taken[0].lease_until == now + 30


async def test_concurrent_claims_never_share_a_job(database: Database) -> None:
    queue = _queue(database, QUEUED)
    waiting = {(await _add(database)).id for _ in range(4)}
    now = time.time()

    claimed = await asyncio.gather(*(queue.claim_next(f"w-{i}", now, now + 30) for i in range(8)))

    assert sorted(job.id for job in claimed if job is not None) == sorted(waiting)


async def test_a_job_claimed_in_place_keeps_its_status(database: Database) -> None:
    queue = _queue(database, IN_PLACE)
    job = await _add(database, status="active")
    now = time.time()

    taken = await queue.claim(job.id, "me", now, now + 30)

    assert taken is not None and (taken.status, taken.owner) == ("active", "me")
    assert await queue.claim(job.id, "you", now, now + 30) is None
    assert await queue.claim_next("you", now, now + 30) is None


async def test_a_reserved_job_is_claimed_by_its_reserver_or_once_the_reservation_lapsed(
    database: Database,
) -> None:
    queue = _queue(database, RESERVABLE)
    now = time.time()
    reserved = await _add(database, owner="streamer", lease_until=now + 10)
    forgotten = await _add(database, owner="gone", lease_until=now + 10)

    assert await queue.claim_next("other", now, now + 30) is None
    assert await queue.claim(reserved.id, "other", now, now + 30) is None
    mine = await queue.claim(reserved.id, "streamer", now, now + 30)
    lapsed = await queue.claim_next("other", now + 11, now + 41)

    assert mine is not None and mine.owner == "streamer" and mine.status == "in_progress"
    assert lapsed is not None and lapsed.id == forgotten.id and lapsed.owner == "other"


async def test_renew_extends_only_the_holders_leases_and_reports_status_and_holder(
    database: Database,
) -> None:
    queue = _queue(database, QUEUED)
    now = time.time()
    mine, theirs, cancelling = [await _add(database) for _ in range(3)]
    for job, owner in ((mine, "me"), (theirs, "them"), (cancelling, "me")):
        assert await queue.claim(job.id, owner, now, now + 30) is not None
    await _set(database, cancelling.id, status="cancelling")

    answer = await queue.renew("me", [mine.id, theirs.id, cancelling.id, "gone"], now + 60)

    assert answer == {
        mine.id: ("in_progress", "me"),
        theirs.id: ("in_progress", "them"),
        cancelling.id: ("cancelling", "me"),
    }
    assert await queue.renew("me", [], now + 60) == {}
    assert (await _get(database, mine.id)).lease_until == now + 60
    assert (await _get(database, theirs.id)).lease_until == now + 30


async def test_renew_of_a_held_only_kind_answers_what_its_worker_still_executes(
    database: Database,
) -> None:
    queue = _queue(database, HELD_ONLY)
    now = time.time()
    kept, finished, other = [await _add(database) for _ in range(3)]
    for job, owner in ((kept, "me"), (finished, "me"), (other, "them")):
        assert await queue.claim(job.id, owner, now, now + 30) is not None
    await _set(database, finished.id, status="completed")

    answer = await queue.renew("me", [kept.id, finished.id, other.id], now + 60)

    assert answer == {kept.id: ("in_progress", "me")}
    assert (await _get(database, finished.id)).lease_until == now + 30


async def test_lapsed_finds_held_jobs_whose_lease_ran_out(database: Database) -> None:
    queue = _queue(database, IN_PLACE)
    now = time.time()
    await _add(database, status="active")  # waiting, not held
    held = await _add(database, status="active", owner="dead", lease_until=now + 1)
    cancelling = await _add(database, status="cancelling", owner="dead", lease_until=now + 5)

    assert await queue.lapsed(now) == []
    assert [job.id for job in await queue.lapsed(now + 2)] == [held.id]
    assert [job.id for job in await queue.lapsed(now, everything=True)] == [
        held.id,
        cancelling.id,
    ]


async def test_a_held_job_without_a_lease_lapses_only_for_kinds_that_say_so(
    database: Database,
) -> None:
    strict = _queue(database, replace(QUEUED, unset_lease_lapsed=False))
    now = time.time()
    orphan = await _add(database, status="cancelling")

    assert [job.id for job in await _queue(database, QUEUED).lapsed(now)] == [orphan.id]
    assert await strict.lapsed(now) == []
    assert [job.id for job in await strict.lapsed(now, everything=True)] == [orphan.id]
    assert await strict.take_over(orphan.id, None, "me", now, now + 30) is None
    taken = await _queue(database, QUEUED).take_over(orphan.id, None, "me", now, now + 30)
    assert taken is not None and taken.owner == "me"


async def test_take_over_is_guarded_by_the_previous_holder_and_the_lease(
    database: Database,
) -> None:
    queue = _queue(database, QUEUED)
    now = time.time()
    job = await _add(database)
    assert await queue.claim(job.id, "dead", now, now + 10) is not None

    assert await queue.take_over(job.id, "dead", "me", now, now + 30) is None  # still leased
    assert await queue.take_over(job.id, "other", "me", now + 11, now + 41) is None
    taken = await asyncio.gather(
        queue.take_over(job.id, "dead", "me", now + 11, now + 41),
        queue.take_over(job.id, "dead", "you", now + 11, now + 41),
    )
    [winner] = [row for row in taken if row is not None]
    forced = await queue.take_over(job.id, winner.owner, "me", now, now + 30, force=True)

    assert winner.lease_until == now + 41 and winner.attempts == 1
    assert forced is not None and forced.owner == "me" and forced.lease_until == now + 30


async def test_requeue_hands_a_job_back_and_refunds_a_clean_attempt(database: Database) -> None:
    handed_back: list[str] = []

    class Tracking(JobQueue[SketchRow]):
        async def _handed_back(self, session: AsyncSession, job_id: str) -> None:
            handed_back.append(job_id)

    queue = Tracking(database, SketchRow, QUEUED)
    now = time.time()
    job = await _add(database)
    assert await queue.claim(job.id, "me", now, now + 30) is not None

    assert await queue.requeue(job.id, "other", refund_attempt=True) is None
    refunded = await queue.requeue(job.id, "me", refund_attempt=True)
    assert refunded is not None
    assert (refunded.status, refunded.owner, refunded.lease_until) == ("queued", None, None)
    assert refunded.attempts == 0 and handed_back == [job.id]

    assert await queue.claim_next("me", now, now + 30) is not None
    counted = await queue.requeue(job.id, "me", refund_attempt=False)
    assert counted is not None and counted.attempts == 1


async def test_requeue_of_a_job_claimed_in_place_only_lets_go_of_it(database: Database) -> None:
    queue = _queue(database, IN_PLACE)
    now = time.time()
    job = await _add(database, status="active")
    assert await queue.claim_next("me", now, now + 30) is not None

    requeued = await queue.requeue(job.id, "me", refund_attempt=False)

    assert requeued is not None and (requeued.status, requeued.owner) == ("active", None)
    assert requeued.attempts == 1
    again = await queue.claim_next("you", now, now + 30)
    assert again is not None and again.id == job.id and again.attempts == 2


async def _set(database: Database, job_id: str, **changes: Any) -> None:
    async with database.session() as session:
        await session.execute(update(SketchRow).where(SketchRow.id == job_id).values(**changes))


async def _get(database: Database, job_id: str) -> SketchRow:
    async with database.session() as session:
        found = await session.execute(select(SketchRow).where(SketchRow.id == job_id))
        return found.scalar_one()
