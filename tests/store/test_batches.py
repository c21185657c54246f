"""The batch repository on SQLite and PostgreSQL: claims, leases, line results once."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from portway.store import Database
from portway.store.batches import BatchStore
from portway.store.models.batches import BatchRow
from portway.store.pagination import PageRequest


def new_batch(*, tenant: str = "t", status: str = "validating", **extra: Any) -> BatchRow:
    now = time.time()
    fields: dict[str, Any] = {
        "id": "batch_" + secrets.token_hex(6),
        "tenant": tenant,
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-x",
        "completion_window": "24h",
        "status": status,
        "created_at": now,
        "expires_at": now + 86400,
        "total": 0,
        "completed": 0,
        "failed": 0,
        "input_tokens": 0,
        "cached_tokens": 0,
        "output_tokens": 0,
        "reasoning_tokens": 0,
        "meta": {},
        "principal": {"kind": "anonymous"},
        "attempts": 0,
        **extra,
    }
    return BatchRow(**fields)


async def test_concurrent_claims_never_share_a_batch(database: Database) -> None:
    store = BatchStore(database)
    waiting = []
    for status in ("validating", "in_progress", "finalizing", "completed", "cancelling"):
        batch = new_batch(status=status)
        await store.create(batch)
        waiting.append((batch.id, status))
    now = time.time()

    claimed = await asyncio.gather(*(store.claim_next(f"w-{i}", now, now + 30) for i in range(8)))

    executing = sorted(
        i for i, status in waiting if status in ("validating", "in_progress", "finalizing")
    )
    assert sorted(b.id for b in claimed if b is not None) == executing
    assert all(b.attempts == 1 and b.owner for b in claimed if b is not None)


async def test_a_lapsed_lease_is_taken_over_and_requeued(database: Database) -> None:
    store = BatchStore(database)
    batch = new_batch(status="in_progress")
    await store.create(batch)
    now = time.time()
    assert await store.claim_next("dead", now, now + 1) is not None
    assert await store.lapsed(now) == []
    [lapsed] = await store.lapsed(now + 2)
    assert await store.take_over(batch.id, "someone-else", "me", now + 2, now + 30) is None
    taken = await store.take_over(batch.id, lapsed.owner, "me", now + 2, now + 30)
    assert taken is not None and taken.owner == "me"
    assert await store.requeue(batch.id, "me", refund_attempt=False) is not None
    again = await store.claim_next("me", now + 2, now + 30)
    assert again is not None and again.attempts == 2


async def test_a_line_result_is_stored_and_counted_once(database: Database) -> None:
    store = BatchStore(database)
    batch = new_batch(status="in_progress")
    await store.create(batch)
    usage = {"input_tokens": 7, "output_tokens": 5}
    assert await store.record_line(batch.id, 0, True, {"custom_id": "a"}, usage)
    assert await store.record_line(batch.id, 1, False, {"custom_id": "b"}, {})
    assert not await store.record_line(batch.id, 0, True, {"custom_id": "a"}, usage)
    current = await store.get("t", batch.id)
    assert current is not None
    assert (current.completed, current.failed, current.input_tokens) == (1, 1, 7)
    assert await store.finished_lines(batch.id) == {0, 1}
    assert [row.result["custom_id"] for row in await store.results(batch.id, after=0)] == ["b"]


async def test_listing_is_per_tenant(database: Database) -> None:
    store = BatchStore(database)
    mine = [new_batch() for _ in range(3)]
    for batch in [*mine, new_batch(tenant="other")]:
        await store.create(batch)
    page = await store.list("t", PageRequest(limit=2))
    assert [b.id for b in page.items] == [mine[2].id, mine[1].id] and page.has_more
    rest = await store.list("t", PageRequest(limit=2, after=mine[1].id))
    assert [b.id for b in rest.items] == [mine[0].id] and not rest.has_more


async def test_only_a_finished_batch_is_deleted_with_its_line_results(database: Database) -> None:
    store = BatchStore(database)
    running, finished = new_batch(status="in_progress"), new_batch(status="completed")
    for batch in (running, finished):
        await store.create(batch)
        assert await store.record_line(batch.id, 0, True, {"custom_id": "a"}, {})

    assert await store.delete_finished("t", running.id) is None
    assert await store.delete_finished("other", finished.id) is None
    deleted = await store.delete_finished("t", finished.id)

    assert deleted is not None and deleted.id == finished.id
    assert await store.get("t", finished.id) is None
    assert await store.results(finished.id) == []
    assert await store.get("t", running.id) is not None
