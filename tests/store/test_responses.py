"""The responses repository as a job store (SQLite and PostgreSQL): claims, leases,
take-over and requeue of background responses."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from portway.store import Database
from portway.store.models.responses import ResponseRow
from portway.store.responses import ResponseStore


def new_response(*, status: str = "queued", background: bool = True, **extra: Any) -> ResponseRow:
    fields: dict[str, Any] = {
        "id": "resp_" + secrets.token_hex(8),
        "tenant": "t",
        "created_at": time.time(),
        "status": status,
        "model": "fake-gpt",
        "background": background,
        "body": {"status": status},
        "include": [],
        "request": {"model": "fake-gpt", "input": "hi", "background": background},
        "principal": {"kind": "anonymous"},
        "attempts": 0,
        **extra,
    }
    return ResponseRow(**fields)


async def _saved(store: ResponseStore, **fields: Any) -> ResponseRow:
    row = new_response(**fields)
    await store.save_response(row, [])
    return row


async def test_concurrent_claims_take_each_queued_background_response_once(
    database: Database,
) -> None:
    store = ResponseStore(database)
    queued = [(await _saved(store)).id for _ in range(4)]
    await _saved(store, background=False)
    await _saved(store, status="completed")
    now = time.time()

    claimed = await asyncio.gather(*(store.claim_next(f"w-{i}", now, now + 30) for i in range(8)))

    taken = [row for row in claimed if row is not None]
    assert sorted(row.id for row in taken) == sorted(queued)
    assert all(row.status == "in_progress" and row.attempts == 1 and row.owner for row in taken)


async def test_renew_answers_only_what_the_worker_still_holds(database: Database) -> None:
    store = ResponseStore(database)
    kept, cancelled, other = [await _saved(store) for _ in range(3)]
    now = time.time()
    for row, owner in ((kept, "me"), (cancelled, "me"), (other, "them")):
        assert await store.claim(row.id, owner, now, now + 30) is not None
    assert await store.update_response(cancelled.id, {"status": "cancelled", "owner": None})

    answer = await store.renew("me", [kept.id, cancelled.id, other.id], now + 60)

    assert answer == {kept.id: ("in_progress", "me")}
    renewed = await store.get_by_id(kept.id)
    assert renewed is not None and renewed.lease_until == now + 60


async def test_a_lapsed_response_is_taken_over_and_requeued_without_its_events(
    database: Database,
) -> None:
    store = ResponseStore(database)
    row = await _saved(store)
    now = time.time()
    assert await store.claim_next("dead", now, now + 1) is not None
    await store.append_events(row.id, [{"type": "response.created", "sequence_number": 0}])
    assert await store.lapsed(now) == []
    [lapsed] = await store.lapsed(now + 2)
    assert lapsed.id == row.id

    assert await store.take_over(row.id, "someone-else", "me", now + 2, now + 30) is None
    taken = await store.take_over(row.id, "dead", "me", now + 2, now + 30)
    assert taken is not None and taken.owner == "me"
    assert await store.requeue(row.id, "dead", refund_attempt=False) is None
    requeued = await store.requeue(row.id, "me", refund_attempt=True)

    assert requeued is not None and requeued.status == "queued" and requeued.owner is None
    assert requeued.attempts == 0  # a clean hand-back does not spend an attempt
    assert await store.events_after(row.id, -1) == []
    again = await store.claim_next("me", now + 2, now + 30)
    assert again is not None and again.id == row.id and again.attempts == 1
