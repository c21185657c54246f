"""Thread vector stores (message attachments for file_search) and waiting for indexing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from portway.errors import NotFoundError
from portway.retrieval.thread_stores import THREAD_STORE_EXPIRY_DAYS
from portway.retrieval.wiring import Retrieval
from portway.store import Database
from tests.retrieval.helpers import SHIPPING, StalledIndexer, add_text_file, start_retrieval


@pytest.fixture
async def services(database: Database, tmp_path: Path) -> AsyncIterator[Retrieval]:
    started = await start_retrieval(database, tmp_path)
    yield started
    await started.close()


async def test_a_thread_store_indexes_its_files_and_expires(services: Retrieval) -> None:
    file_id = await add_text_file(services, "t", "ship.txt", SHIPPING)
    store_id = await services.thread_stores.create_store("t", "thread_1", [file_id])

    assert await services.thread_stores.wait_indexed("t", [store_id], 10.0)
    store = await services.vector_stores.get("t", store_id)
    assert store["file_counts"]["completed"] == 1
    assert store["expires_after"] == {"anchor": "last_active_at", "days": 7}
    assert THREAD_STORE_EXPIRY_DAYS == 7
    assert "thread_1" in (store["name"] or "")


async def test_adding_a_file_the_store_has_does_not_index_it_again(services: Retrieval) -> None:
    first = await add_text_file(services, "t", "a.txt", SHIPPING)
    second = await add_text_file(services, "t", "b.txt", SHIPPING)
    store_id = await services.thread_stores.create_store("t", "thread_1", [first])
    await services.indexer.idle()
    before = await services.vector_stores.repository.get_file("t", store_id, first)

    await services.thread_stores.add_files("t", store_id, [first, second])
    await services.indexer.idle()

    after = await services.vector_stores.repository.get_file("t", store_id, first)
    assert before is not None and after == before
    added = await services.vector_stores.get_file("t", store_id, second)
    assert added["status"] == "completed"


async def test_another_tenants_files_and_stores_are_not_found(services: Retrieval) -> None:
    theirs = await add_text_file(services, "other", "x.txt", SHIPPING)
    mine = await add_text_file(services, "t", "y.txt", SHIPPING)
    with pytest.raises(NotFoundError):
        await services.thread_stores.create_store("t", "thread_1", [theirs])
    their_store = await services.thread_stores.create_store("other", "thread_2", [theirs])
    with pytest.raises(NotFoundError):
        await services.thread_stores.add_files("t", their_store, [mine])


async def test_waiting_for_files_another_process_indexes(services: Retrieval) -> None:
    service = services.vector_stores
    real_indexer = service.indexer
    service.indexer = StalledIndexer(service.repository, services.files)
    file_id = await add_text_file(services, "t", "ship.txt", SHIPPING)
    store_id = await services.thread_stores.create_store("t", "thread_1", [file_id])

    # Nothing indexes it here: the wait gives up after its limit.
    assert not await services.thread_stores.wait_indexed("t", [store_id], 0.15)

    # "Another process" indexes it meanwhile: the wait sees it in the database.
    pending = await service.repository.pending_files()
    waiting = asyncio.create_task(services.thread_stores.wait_indexed("t", [store_id], 10.0))
    real_indexer.submit(pending)
    assert await waiting
    assert (await service.get_file("t", store_id, file_id))["status"] == "completed"
