"""Indexing and search below HTTP, on both backends: hybrid ranking, cancel, resume."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from portway.store import Database
from portway.vector_stores.wire import (
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    SearchRequest,
)
from tests.retrieval.helpers import StalledIndexer, add_text_file, start_retrieval

CARS = "The automobile needs new tyres before the winter season starts."
FRUIT = "Bananas are a yellow fruit, rich in potassium and easy to peel."


async def _store_with(services, tenant: str, texts: dict[str, str]) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    file_ids = [await add_text_file(services, tenant, name, text) for name, text in texts.items()]
    store = await services.vector_stores.create(
        tenant, CreateVectorStoreRequest(name="s", file_ids=file_ids)
    )
    await services.indexer.idle()
    return store["id"], file_ids


async def test_full_text_alone_misses_synonyms(database: Database, tmp_path: Path) -> None:
    services = await start_retrieval(database, tmp_path)
    try:
        store_id, _ = await _store_with(services, "t", {"cars.txt": CARS, "fruit.txt": FRUIT})
        page = await services.vector_stores.search("t", store_id, SearchRequest(query="car wheels"))
        assert page["data"] == []
    finally:
        await services.close()


async def test_hybrid_search_finds_synonyms(database: Database, tmp_path: Path) -> None:
    services = await start_retrieval(database, tmp_path, embeddings="concepts")
    try:
        store_id, (cars, fruit) = await _store_with(
            services, "t", {"cars.txt": CARS, "fruit.txt": FRUIT}
        )
        page = await services.vector_stores.search("t", store_id, SearchRequest(query="car wheels"))
        assert page["data"][0]["file_id"] == cars
        # Agreement of both rankings beats either alone.
        both = await services.vector_stores.search(
            "t", store_id, SearchRequest(query="yellow bananas fruit")
        )
        assert both["data"][0]["file_id"] == fruit and both["data"][0]["score"] == 1.0
    finally:
        await services.close()


async def test_embedding_failures_fall_back_to_full_text(
    database: Database, tmp_path: Path
) -> None:
    services = await start_retrieval(database, tmp_path, embeddings="broken")
    try:
        store_id, (cars, _) = await _store_with(
            services, "t", {"cars.txt": CARS, "fruit.txt": FRUIT}
        )
        store = await services.vector_stores.get("t", store_id)
        assert store["file_counts"]["completed"] == 2
        page = await services.vector_stores.search("t", store_id, SearchRequest(query="tyres"))
        assert [item["file_id"] for item in page["data"]] == [cars]
    finally:
        await services.close()


async def test_cancelling_a_batch_cancels_its_pending_files(
    database: Database, tmp_path: Path
) -> None:
    services = await start_retrieval(database, tmp_path)
    service = services.vector_stores
    service.indexer = StalledIndexer(service.repository, services.files)
    try:
        file_ids = [await add_text_file(services, "t", f"{i}.txt", CARS) for i in range(3)]
        store = await service.create("t", CreateVectorStoreRequest(name="b"))
        batch = await service.create_batch(
            "t", store["id"], CreateFileBatchRequest(file_ids=file_ids)
        )
        assert batch["status"] == "in_progress" and batch["file_counts"]["in_progress"] == 3
        cancelled = await service.cancel_batch("t", store["id"], batch["id"])
        assert cancelled["status"] == "cancelled"
        assert cancelled["file_counts"]["cancelled"] == 3
        assert (await service.get("t", store["id"]))["file_counts"]["cancelled"] == 3
    finally:
        await services.close()


async def test_interrupted_indexing_resumes_on_start(database: Database, tmp_path: Path) -> None:
    first = await start_retrieval(database, tmp_path)
    first.vector_stores.indexer = StalledIndexer(first.vector_stores.repository, first.files)
    file_id = await add_text_file(first, "t", "cars.txt", CARS)
    store = await first.vector_stores.create(
        "t", CreateVectorStoreRequest(name="r", file_ids=[file_id])
    )
    await first.close()  # "crash" with the file still in_progress

    second = await start_retrieval(database, tmp_path)  # start() resumes pending jobs
    try:
        await second.indexer.idle()
        record = await second.vector_stores.get_file("t", store["id"], file_id)
        assert record["status"] == "completed"
    finally:
        await second.close()


async def test_a_stale_job_cannot_overwrite_a_newer_one(database: Database, tmp_path: Path) -> None:
    services = await start_retrieval(database, tmp_path)
    service = services.vector_stores
    try:
        store_id, (file_id,) = await _store_with(services, "t", {"cars.txt": CARS})
        old = await service.repository.get_file("t", store_id, file_id)
        assert old is not None
        service.indexer = StalledIndexer(service.repository, services.files)
        await service.add_file("t", store_id, CreateVectorStoreFileRequest(file_id=file_id))
        old_job = replace(old, status="in_progress")
        assert not await service.repository.complete_file(old_job, [], 0)
        assert not await service.repository.fail_file(old_job, "server_error", "late")
        assert (await service.get_file("t", store_id, file_id))["status"] == "in_progress"
    finally:
        await services.close()
