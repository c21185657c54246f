"""Thread vector stores (message attachments for file_search) and waiting for indexing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from portway.errors import NotFoundError
from portway.retrieval.indexer import Indexer
from portway.retrieval.thread_stores import THREAD_STORE_EXPIRY_DAYS
from portway.store import Database
from tests.retrieval.helpers import add_text_file, start_retrieval

TEXT = "Orders leave our warehouse in Lisbon every weekday."


class StalledIndexer(Indexer):
    """Accepts jobs but never runs them: files stay in_progress (as when another process
    indexes them)."""

    def submit(self, jobs: object) -> None:
        return None


async def test_a_thread_store_indexes_its_files_and_expires(
    database: Database, tmp_path: Path
) -> None:
    services = await start_retrieval(database, tmp_path)
    try:
        file_id = await add_text_file(services, "t", "ship.txt", TEXT)
        store_id = await services.thread_stores.create_store("t", "thread_1", [file_id])

        assert await services.thread_stores.wait_indexed("t", [store_id], 10.0)
        store = await services.vector_stores.get("t", store_id)
        assert store["file_counts"]["completed"] == 1
        assert store["expires_after"] == {"anchor": "last_active_at", "days": 7}
        assert THREAD_STORE_EXPIRY_DAYS == 7
        assert "thread_1" in (store["name"] or "")
    finally:
        await services.close()


async def test_adding_a_file_the_store_has_does_not_index_it_again(
    database: Database, tmp_path: Path
) -> None:
    services = await start_retrieval(database, tmp_path)
    try:
        first = await add_text_file(services, "t", "a.txt", TEXT)
        second = await add_text_file(services, "t", "b.txt", TEXT)
        store_id = await services.thread_stores.create_store("t", "thread_1", [first])
        await services.indexer.idle()
        before = await services.vector_stores.repository.get_file("t", store_id, first)

        await services.thread_stores.add_files("t", store_id, [first, second])
        await services.indexer.idle()

        after = await services.vector_stores.repository.get_file("t", store_id, first)
        assert before is not None and after == before
        added = await services.vector_stores.get_file("t", store_id, second)
        assert added["status"] == "completed"
    finally:
        await services.close()


async def test_another_tenants_files_and_stores_are_not_found(
    database: Database, tmp_path: Path
) -> None:
    services = await start_retrieval(database, tmp_path)
    try:
        theirs = await add_text_file(services, "other", "x.txt", TEXT)
        mine = await add_text_file(services, "t", "y.txt", TEXT)
        with pytest.raises(NotFoundError):
            await services.thread_stores.create_store("t", "thread_1", [theirs])
        their_store = await services.thread_stores.create_store("other", "thread_2", [theirs])
        with pytest.raises(NotFoundError):
            await services.thread_stores.add_files("t", their_store, [mine])
    finally:
        await services.close()


async def test_waiting_for_files_another_process_indexes(
    database: Database, tmp_path: Path
) -> None:
    services = await start_retrieval(database, tmp_path)
    service = services.vector_stores
    real_indexer = service.indexer
    service.indexer = StalledIndexer(service.repository, services.files)
    try:
        file_id = await add_text_file(services, "t", "ship.txt", TEXT)
        store_id = await services.thread_stores.create_store("t", "thread_1", [file_id])

        # Nothing indexes it here: the wait gives up after its limit.
        assert not await services.thread_stores.wait_indexed("t", [store_id], 0.15)

        # "Another process" indexes it meanwhile: the wait sees it in the database.
        pending = await service.repository.pending_files()
        waiting = asyncio.create_task(services.thread_stores.wait_indexed("t", [store_id], 10.0))
        real_indexer.submit(pending)
        assert await waiting
        assert (await service.get_file("t", store_id, file_id))["status"] == "completed"
    finally:
        await services.close()
