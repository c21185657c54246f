"""``VectorStoreService``: vector stores, their files and file batches (validation, tenancy).

Attaching a file records it ``in_progress`` and hands it to the ``Indexer``; counts,
usage and statuses are read back from the store. Another tenant's store, file or batch
is "not found".
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from portway.errors import InvalidRequestError, NotFoundError
from portway.protocol.lists import ListObject, list_object
from portway.retrieval.chunking import Chunking
from portway.retrieval.files import FileService, file_not_found
from portway.retrieval.indexer import Indexer
from portway.retrieval.search import SearchHit, SearchService
from portway.security.principal import Principal
from portway.store.pagination import PageRequest
from portway.store.vector_stores import (
    IN_PROGRESS,
    FileBatchRecord,
    VectorStoreFileRecord,
    VectorStoreRecord,
    VectorStoreRepository,
)
from portway.vector_stores.render import batch_object, search_page, store_file_object, store_object
from portway.vector_stores.wire import (
    ChunkingStrategy,
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    FileBatchDict,
    SearchRequest,
    SearchResultsPageDict,
    StaticChunkingStrategy,
    UpdateVectorStoreFileRequest,
    UpdateVectorStoreRequest,
    VectorStoreDict,
    VectorStoreFileDict,
)

# How often a wait for another process's indexing looks at the database.
PENDING_POLL_SECONDS = 0.1


def _store_not_found(store_id: str) -> NotFoundError:
    return NotFoundError(f"No vector store found with id '{store_id}'.", param="vector_store_id")


class VectorStoreService:
    def __init__(
        self,
        repository: VectorStoreRepository,
        files: FileService,
        indexer: Indexer,
        search_service: SearchService,
        default_chunking: Chunking,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.files = files
        self.indexer = indexer
        self.search_service = search_service
        self._default_chunking = default_chunking
        self._clock = clock

    # Stores ----------------------------------------------------------------

    async def create(self, tenant: str, body: CreateVectorStoreRequest) -> VectorStoreDict:
        now = self._clock()
        store = VectorStoreRecord(
            id="vs_" + secrets.token_hex(12),
            tenant=tenant,
            name=body.name or "",
            description=body.description,
            created_at=now,
            last_active_at=now,
            expires_after_days=body.expires_after.days if body.expires_after else None,
            metadata=body.metadata,
        )
        jobs = await self._new_files(
            tenant, store.id, body.file_ids, body.chunking_strategy, None, "file_ids"
        )
        await self.repository.create(store, jobs)
        self.indexer.submit(jobs)
        return await self.get(tenant, store.id)

    async def get(self, tenant: str, store_id: str) -> VectorStoreDict:
        return store_object(await self._store(tenant, store_id), self._clock())

    async def list(self, tenant: str, page: PageRequest) -> ListObject:
        found = await self.repository.list(tenant, page)
        now = self._clock()
        return list_object([store_object(store, now) for store in found.items], found.has_more)

    async def update(
        self, tenant: str, store_id: str, body: UpdateVectorStoreRequest
    ) -> VectorStoreDict:
        store = await self._store(tenant, store_id)
        changes: dict[str, Any] = {}
        if body.name is not None:
            changes["name"] = body.name
        if "expires_after" in body.model_fields_set:
            changes["expires_after_days"] = body.expires_after.days if body.expires_after else None
        if "metadata" in body.model_fields_set:
            changes["metadata"] = body.metadata
        store = replace(store, last_active_at=self._clock(), **changes)
        await self.repository.save(store)
        return await self.get(tenant, store_id)

    async def delete(self, tenant: str, store_id: str) -> dict[str, Any]:
        await self._store(tenant, store_id)
        self.indexer.cancel_store(store_id)
        if not await self.repository.delete(tenant, store_id):
            raise _store_not_found(store_id)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    async def search_stores(
        self,
        tenant: str,
        store_ids: Sequence[str],
        query: str,
        max_results: int,
        score_threshold: float = 0.0,
        principal: Principal | None = None,
    ) -> list[SearchHit]:
        """Search the stores of ``tenant`` among ``store_ids`` (others are ignored), for
        ``principal`` (who the query embedding is billed to)."""
        owned = await self.repository.owned_ids(tenant, store_ids)
        if not owned:
            return []
        hits = await self.search_service.search(
            owned, [query], max_results, score_threshold=score_threshold, principal=principal
        )
        await self.repository.touch(owned, self._clock())
        return hits

    async def wait_indexed(self, tenant: str, store_ids: Sequence[str], max_seconds: float) -> bool:
        """Wait until no file of these stores is being indexed (by any process), at most
        ``max_seconds`` seconds; False if some still are."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        while await self.repository.count_pending(tenant, store_ids):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            pause = min(remaining, PENDING_POLL_SECONDS)
            if not await self.indexer.settle(set(store_ids), pause):
                # Another process indexes them: look again after a pause.
                await asyncio.sleep(pause)
        return True

    # Files -----------------------------------------------------------------

    async def add_file(
        self, tenant: str, store_id: str, body: CreateVectorStoreFileRequest
    ) -> VectorStoreFileDict:
        await self._store(tenant, store_id)
        jobs = await self._new_files(
            tenant, store_id, [body.file_id], body.chunking_strategy, body.attributes, "file_id"
        )
        await self.repository.add_files(jobs)
        self.indexer.submit(jobs)
        return store_file_object(jobs[0])

    async def get_file(self, tenant: str, store_id: str, file_id: str) -> VectorStoreFileDict:
        return store_file_object(await self._store_file(tenant, store_id, file_id))

    async def list_files(
        self,
        tenant: str,
        store_id: str,
        page: PageRequest,
        status: str | None = None,
        batch_id: str | None = None,
    ) -> ListObject:
        await self._store(tenant, store_id)
        if batch_id is not None:
            await self._batch(tenant, store_id, batch_id)
        found = await self.repository.list_files(
            tenant, store_id, page, status=status, batch_id=batch_id
        )
        return list_object([store_file_object(record) for record in found.items], found.has_more)

    async def update_file(
        self, tenant: str, store_id: str, file_id: str, body: UpdateVectorStoreFileRequest
    ) -> VectorStoreFileDict:
        await self._store_file(tenant, store_id, file_id)
        record = await self.repository.set_attributes(tenant, store_id, file_id, body.attributes)
        if record is None:
            raise file_not_found(file_id)
        return store_file_object(record)

    async def delete_file(self, tenant: str, store_id: str, file_id: str) -> dict[str, Any]:
        await self._store(tenant, store_id)
        self.indexer.cancel(store_id, [file_id])
        if not await self.repository.delete_file(tenant, store_id, file_id):
            raise file_not_found(file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    # Batches ---------------------------------------------------------------

    async def create_batch(
        self, tenant: str, store_id: str, body: CreateFileBatchRequest
    ) -> FileBatchDict:
        await self._store(tenant, store_id)
        batch = FileBatchRecord(
            id="vsfb_" + secrets.token_hex(12),
            vector_store_id=store_id,
            tenant=tenant,
            created_at=self._clock(),
        )
        if (body.file_ids is None) == (body.files is None):
            raise InvalidRequestError(
                "Provide exactly one of 'file_ids' or 'files'.", param="file_ids"
            )
        if body.file_ids is not None:
            jobs = await self._new_files(
                tenant,
                store_id,
                body.file_ids,
                body.chunking_strategy,
                body.attributes,
                "file_ids",
                batch.id,
            )
        else:
            jobs = []
            for item in body.files or ():
                jobs += await self._new_files(
                    tenant,
                    store_id,
                    [item.file_id],
                    item.chunking_strategy,
                    item.attributes,
                    "files",
                    batch.id,
                )
        jobs = list({job.file_id: job for job in jobs}.values())
        await self.repository.create_batch(batch, jobs)
        self.indexer.submit(jobs)
        return batch_object(await self._batch(tenant, store_id, batch.id))

    async def get_batch(self, tenant: str, store_id: str, batch_id: str) -> FileBatchDict:
        return batch_object(await self._batch(tenant, store_id, batch_id))

    async def cancel_batch(self, tenant: str, store_id: str, batch_id: str) -> FileBatchDict:
        await self._batch(tenant, store_id, batch_id)
        cancelled = await self.repository.cancel_batch(tenant, store_id, batch_id, self._clock())
        self.indexer.cancel(store_id, cancelled)
        return batch_object(await self._batch(tenant, store_id, batch_id))

    # Search ----------------------------------------------------------------

    async def search(
        self, tenant: str, store_id: str, body: SearchRequest, principal: Principal | None = None
    ) -> SearchResultsPageDict:
        await self._store(tenant, store_id)
        threshold = body.ranking_options.score_threshold if body.ranking_options else 0.0
        hits = await self.search_service.search(
            [store_id], body.queries(), body.max_num_results, body.filters, threshold, principal
        )
        await self.repository.touch([store_id], self._clock())
        return search_page(body.queries(), hits)

    # Helpers ---------------------------------------------------------------

    async def _store(self, tenant: str, store_id: str) -> VectorStoreRecord:
        store = await self.repository.get(tenant, store_id)
        if store is None:
            raise _store_not_found(store_id)
        return store

    async def _store_file(self, tenant: str, store_id: str, file_id: str) -> VectorStoreFileRecord:
        await self._store(tenant, store_id)
        record = await self.repository.get_file(tenant, store_id, file_id)
        if record is None:
            raise file_not_found(file_id)
        return record

    async def _batch(self, tenant: str, store_id: str, batch_id: str) -> FileBatchRecord:
        batch = await self.repository.get_batch(tenant, store_id, batch_id)
        if batch is None:
            raise NotFoundError(f"No file batch found with id '{batch_id}'.", param="batch_id")
        return batch

    def _chunking(self, strategy: ChunkingStrategy | None) -> Chunking:
        if isinstance(strategy, StaticChunkingStrategy):
            return Chunking(
                strategy.static.max_chunk_size_tokens, strategy.static.chunk_overlap_tokens
            )
        return self._default_chunking

    async def _new_files(
        self,
        tenant: str,
        store_id: str,
        file_ids: Sequence[str],
        strategy: ChunkingStrategy | None,
        attributes: dict[str, Any] | None,
        param: str,
        batch_id: str | None = None,
    ) -> list[VectorStoreFileRecord]:
        """Records for files to attach; every id must be a file of ``tenant``."""
        wanted = list(dict.fromkeys(file_ids))
        found = await self.files.get_many(tenant, wanted)
        for file_id in wanted:
            if file_id not in found:
                raise NotFoundError(f"No file found with id '{file_id}'.", param=param)
        chunking = self._chunking(strategy)
        now = self._clock()
        return [
            VectorStoreFileRecord(
                vector_store_id=store_id,
                file_id=file_id,
                tenant=tenant,
                status=IN_PROGRESS,
                created_at=now,
                chunk_size_tokens=chunking.size,
                chunk_overlap_tokens=chunking.overlap,
                attributes=attributes,
                batch_id=batch_id,
            )
            for file_id in wanted
        ]
