"""The run repository on SQLite and PostgreSQL: claiming, leases, take-over, guarded endings."""

from __future__ import annotations

import asyncio
import time

from portway.assistants.ids import new_id
from portway.store import Database
from portway.store.assistants import UNEXPLAINED_FAILURE, AssistantStore, RunStore
from portway.store.models.assistants import MessageRow, RunRow, RunStepRow, ThreadRow
from portway.store.pagination import PageRequest


def new_run(thread_id: str, *, tenant: str = "t", status: str = "queued", **extra) -> RunRow:
    fields = {
        "id": new_id("run"),
        "tenant": tenant,
        "thread_id": thread_id,
        "assistant_id": "asst_x",
        "created_at": time.time(),
        "status": status,
        "model": "m",
        "instructions": "",
        "tools": [],
        "meta": {},
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "parallel_tool_calls": True,
        "principal": {"kind": "anonymous"},
        "attempts": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "model_calls": 0,
        **extra,
    }
    return RunRow(**fields)


async def new_thread(database: Database, tenant: str = "t") -> str:
    thread = ThreadRow(id=new_id("thread"), tenant=tenant, created_at=time.time(), meta={})
    await AssistantStore(database).create_thread(thread, [])
    return thread.id


async def test_concurrent_claims_never_share_a_run(database: Database) -> None:
    runs = RunStore(database)
    queued = []
    for _ in range(8):
        run = new_run(await new_thread(database))
        await runs.create(run)
        queued.append(run.id)
    now = time.time()

    claimed = await asyncio.gather(
        *(runs.claim_next(f"worker-{i}", now, now + 30) for i in range(12))
    )

    ids = [run.id for run in claimed if run is not None]
    assert sorted(ids) == sorted(queued)  # each run once, the extra claimers got nothing
    for run in claimed:
        if run is not None:
            assert run.status == "in_progress" and run.attempts == 1
            assert run.owner is not None and run.started_at is not None


async def test_reserved_runs_are_left_to_their_reserver(database: Database) -> None:
    runs = RunStore(database)
    now = time.time()
    reserved = new_run(await new_thread(database), owner="streamer", lease_until=now + 30)
    await runs.create(reserved)
    assert await runs.claim_next("other", now, now + 30) is None
    assert await runs.claim(reserved.id, "other", now, now + 30) is None
    mine = await runs.claim(reserved.id, "streamer", now, now + 30)
    assert mine is not None and mine.status == "in_progress"
    # A reservation whose lease lapsed is anyone's.
    lapsed = new_run(await new_thread(database), owner="gone", lease_until=now - 1)
    await runs.create(lapsed)
    taken = await runs.claim_next("other", now, now + 30)
    assert taken is not None and taken.id == lapsed.id and taken.owner == "other"


async def test_take_over_and_requeue_forget_the_unfinished_turn(database: Database) -> None:
    runs = RunStore(database)
    now = time.time()
    thread_id = await new_thread(database)
    run = new_run(thread_id, status="in_progress", owner="dead", lease_until=now - 5, attempts=1)
    await runs.create(run)
    message = MessageRow(
        id=new_id("msg"),
        tenant="t",
        thread_id=thread_id,
        created_at=now,
        status="in_progress",
        role="assistant",
        content=[],
        run_id=run.id,
        meta={},
    )
    step = RunStepRow(
        id=new_id("step"),
        tenant="t",
        run_id=run.id,
        thread_id=thread_id,
        assistant_id="asst_x",
        created_at=now,
        type="message_creation",
        status="in_progress",
        step_details={"type": "message_creation", "message_creation": {"message_id": message.id}},
        meta={},
        model_calls=[],
    )
    await runs.add_step(step, message)

    assert [r.id for r in await runs.lapsed(now)] == [run.id]
    first, second = await asyncio.gather(
        runs.take_over(run.id, "dead", "me", now, now + 30),
        runs.take_over(run.id, "dead", "you", now, now + 30),
    )
    assert (first is None) != (second is None)  # exactly one worker takes it over
    holder = "me" if first is not None else "you"
    assert await runs.requeue(run.id, "someone-else", refund_attempt=False) is None
    requeued = await runs.requeue(run.id, holder, refund_attempt=False)
    assert requeued is not None and requeued.status == "queued" and requeued.owner is None
    assert await runs.steps_of(run.id) == []
    assert await AssistantStore(database).thread_messages(thread_id) == []


async def test_finish_is_guarded_by_status(database: Database) -> None:
    runs = RunStore(database)
    run = new_run(await new_thread(database), status="requires_action")
    await runs.create(run)
    changes = {"status": "expired"}
    closed = {"status": "expired"}
    finished = await runs.finish(
        run.id, ("requires_action",), changes, step_changes=closed, message_changes={}
    )
    assert finished is not None and finished[0].status == "expired"
    again = await runs.finish(
        run.id, ("requires_action",), {"status": "cancelled"}, step_changes={}, message_changes={}
    )
    assert again is None


async def test_a_run_never_fails_without_a_last_error(database: Database) -> None:
    """Whichever path fails a run or its steps, a reason is recorded (issue 9: a run ended
    failed with last_error null)."""
    runs = RunStore(database)
    thread_id = await new_thread(database)
    ended = new_run(thread_id, status="in_progress")
    moved = new_run(await new_thread(database), status="in_progress")
    for run in (ended, moved):
        await runs.create(run)
    step = RunStepRow(
        id=new_id("step"),
        tenant="t",
        run_id=ended.id,
        thread_id=thread_id,
        assistant_id="asst_x",
        created_at=time.time(),
        type="tool_calls",
        status="in_progress",
        step_details={"type": "tool_calls", "tool_calls": []},
        meta={},
        model_calls=[],
    )
    await runs.add_step(step)

    failed = {"status": "failed", "failed_at": time.time()}
    finished = await runs.finish(
        ended.id, ("in_progress",), failed, step_changes=failed, message_changes={}
    )
    transitioned = await runs.transition(moved.id, ("in_progress",), {**failed, "last_error": None})

    assert finished is not None and transitioned is not None
    run, (closed,), _ = finished
    for row in (run, closed, transitioned, await runs.get_by_id(ended.id)):
        assert row is not None and row.status == "failed"
        assert row.last_error == UNEXPLAINED_FAILURE
        assert row.last_error["message"]


async def test_pagination_and_tenancy(database: Database) -> None:
    runs = RunStore(database)
    thread_id = await new_thread(database, tenant="a")
    made = []
    for _ in range(5):
        run = new_run(thread_id, tenant="a", status="completed")
        await runs.create(run)
        made.append(run.id)
    page = await runs.list("a", thread_id, PageRequest(limit=2, order="asc", after=made[0]))
    assert [r.id for r in page.items] == made[1:3] and page.has_more
    page = await runs.list("a", thread_id, PageRequest(limit=3, order="desc", before=made[1]))
    assert [r.id for r in page.items] == made[4:1:-1] and not page.has_more
    assert (await runs.list("b", thread_id, PageRequest())).items == []
    assert await runs.get("b", thread_id, made[0]) is None
    unknown = await runs.list("a", thread_id, PageRequest(after="run_unknown"))
    assert unknown.items == [] and not unknown.has_more


async def test_change_thread_derives_changes_from_the_locked_row(database: Database) -> None:
    store = AssistantStore(database)
    thread_id = await new_thread(database, tenant="a")

    def claim(store_id: str):  # type: ignore[no-untyped-def]
        def change(row: ThreadRow) -> dict:
            if row.tool_resources:
                return {}
            return {"tool_resources": {"file_search": {"vector_store_ids": [store_id]}}}

        return change

    assert await store.change_thread("b", thread_id, claim("vs_b")) is None  # another tenant
    first, second = await asyncio.gather(
        store.change_thread("a", thread_id, claim("vs_1")),
        store.change_thread("a", thread_id, claim("vs_2")),
    )
    assert first is not None and second is not None
    # Both see the same winner: the second derived its (empty) change from the first's row.
    assert first.tool_resources == second.tool_resources
    stored = await store.get_thread("a", thread_id)
    assert stored is not None and stored.tool_resources == first.tool_resources
