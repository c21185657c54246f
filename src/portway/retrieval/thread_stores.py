"""Thread vector stores: where message attachments for ``file_search`` are indexed.

OpenAI gives a thread a vector store of its own the first time one of its messages
attaches a file for ``file_search`` (or adds the file to the thread's store when it has
one); such stores expire seven days after they were last active. The run engine waits
(bounded) for the thread store's files to be indexed before a run's first model call.
This implements ``assistants.builtin.ThreadFileIndex`` over ``VectorStoreService``, so
thread stores are ordinary vector stores of the tenant (listed, searchable, deletable).
"""

from __future__ import annotations

from collections.abc import Sequence

from portway.vector_stores.serving import VectorStoreService
from portway.vector_stores.wire import (
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    ExpiresAfter,
)

THREAD_STORE_EXPIRY_DAYS = 7


class ThreadVectorStores:
    def __init__(self, vector_stores: VectorStoreService) -> None:
        self._stores = vector_stores

    async def create_store(self, tenant: str, thread_id: str, file_ids: Sequence[str]) -> str:
        body = CreateVectorStoreRequest(
            name=f"Vector store for {thread_id}",
            file_ids=list(file_ids),
            expires_after=ExpiresAfter(anchor="last_active_at", days=THREAD_STORE_EXPIRY_DAYS),
        )
        return (await self._stores.create(tenant, body))["id"]

    async def add_files(self, tenant: str, store_id: str, file_ids: Sequence[str]) -> None:
        for file_id in dict.fromkeys(file_ids):
            # Attaching a file the store already has would index it again for nothing.
            if await self._stores.repository.get_file(tenant, store_id, file_id) is None:
                await self._stores.add_file(
                    tenant, store_id, CreateVectorStoreFileRequest(file_id=file_id)
                )

    async def drop_store(self, tenant: str, store_id: str) -> None:
        await self._stores.delete(tenant, store_id)

    async def wait_indexed(self, tenant: str, store_ids: Sequence[str], max_seconds: float) -> bool:
        return await self._stores.wait_indexed(tenant, store_ids, max_seconds)
