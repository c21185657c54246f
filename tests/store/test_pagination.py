"""Cursor pagination (limit, order, after, before) on both backends, for both kinds of sort
key: (created_at, id) and the insertion counter ``seq``."""

from __future__ import annotations

from portway.assistants.ids import new_id
from portway.store import Database
from portway.store.assistants import AssistantStore
from portway.store.models.assistants import MessageRow, ThreadRow
from portway.store.pagination import PageRequest
from portway.store.vector_stores import VectorStoreRecord, VectorStoreRepository


async def test_after_and_before_in_both_orders(database: Database) -> None:
    repository = VectorStoreRepository(database)
    ids = [f"vs_{i}" for i in range(5)]
    for i, store_id in enumerate(ids):
        # Two stores share a timestamp: the id breaks the tie.
        created = 1000.0 + min(i, 3)
        await repository.create(VectorStoreRecord(store_id, "t", "s", created, created))
    await repository.create(VectorStoreRecord("vs_other", "u", "s", 1001.0, 1001.0))

    async def page(**kwargs: object) -> tuple[list[str], bool]:
        found = await repository.list("t", PageRequest(**kwargs))  # type: ignore[arg-type]
        return [store.id for store in found.items], found.has_more

    assert await page(limit=2) == (["vs_4", "vs_3"], True)
    assert await page(limit=2, after="vs_3") == (["vs_2", "vs_1"], True)
    assert await page(limit=2, after="vs_1") == (["vs_0"], False)
    assert await page(limit=2, order="asc") == (["vs_0", "vs_1"], True)
    assert await page(limit=10, order="asc", after="vs_1") == (["vs_2", "vs_3", "vs_4"], False)
    assert await page(limit=2, before="vs_1") == (["vs_3", "vs_2"], True)
    assert await page(limit=2, order="asc", before="vs_3") == (["vs_1", "vs_2"], True)
    assert await page(limit=10, after="vs_4", before="vs_1") == (["vs_3", "vs_2"], False)
    assert await page(limit=2, after="vs_other") == ([], False)  # another tenant's cursor


async def test_objects_created_together_keep_their_order(database: Database) -> None:
    store = AssistantStore(database)
    thread = ThreadRow(id=new_id("thread"), tenant="t", created_at=1000.0, meta={})
    messages = [
        MessageRow(
            id=new_id("msg"),
            tenant="t",
            thread_id=thread.id,
            created_at=1000.0,  # one timestamp for all: only the insertion order tells
            status="completed",
            role="user",
            content=[],
            attachments=[],
            meta={},
        )
        for _ in range(5)
    ]
    made = [message.id for message in messages]
    await store.create_thread(thread, messages)

    async def page(**kwargs: object) -> tuple[list[str], bool]:
        found = await store.list_messages("t", thread.id, PageRequest(**kwargs))  # type: ignore[arg-type]
        return [message.id for message in found.items], found.has_more

    assert await page(order="asc") == (made, False)
    assert await page(limit=2) == (made[:2:-1], True)
    assert await page(limit=2, order="asc", after=made[1]) == (made[2:4], True)
    assert await page(limit=2, before=made[1]) == (made[3:1:-1], True)
    assert await page(limit=10, order="asc", after=made[0], before=made[4]) == (made[1:4], False)
    assert await page(after="msg_unknown") == ([], False)
    assert (await store.list_messages("u", thread.id, PageRequest())).items == []
