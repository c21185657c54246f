"""Cursor pagination (limit, order, after, before) on both backends."""

from __future__ import annotations

from portway.store import Database
from portway.store.paging import PageRequest
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
        stores, has_more = await repository.list("t", PageRequest(**kwargs))  # type: ignore[arg-type]
        return [store.id for store in stores], has_more

    assert await page(limit=2) == (["vs_4", "vs_3"], True)
    assert await page(limit=2, after="vs_3") == (["vs_2", "vs_1"], True)
    assert await page(limit=2, after="vs_1") == (["vs_0"], False)
    assert await page(limit=2, order="asc") == (["vs_0", "vs_1"], True)
    assert await page(limit=10, order="asc", after="vs_1") == (["vs_2", "vs_3", "vs_4"], False)
    assert await page(limit=2, before="vs_1") == (["vs_3", "vs_2"], True)
    assert await page(limit=2, order="asc", before="vs_3") == (["vs_1", "vs_2"], True)
    assert await page(limit=10, after="vs_4", before="vs_1") == (["vs_3", "vs_2"], False)
    assert await page(limit=2, after="vs_other") == ([], False)  # another tenant's cursor
