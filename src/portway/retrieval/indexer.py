"""Background indexing of vector-store files: extract → chunk → (embed) → store.

Each attached file is one asyncio task; at most ``retrieval.indexing_concurrency`` run
at once. Extraction and chunking run in worker processes under a time limit
(``retrieval.isolation``), so no file can stall the event loop or run forever. A job
ends with the file ``completed`` (chunks written in the same transaction) or ``failed``
with ``last_error``. Jobs are idempotent: on start-up, files left ``in_progress`` by a
previous process are indexed again. A job whose file was removed, re-attached or
cancelled meanwhile is discarded when it tries to write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable

from portway.errors import PortwayError
from portway.retrieval.chunking import Chunking
from portway.retrieval.embeddings import Embedder
from portway.retrieval.extract import ExtractionError
from portway.retrieval.files import FileService
from portway.retrieval.isolation import ExtractionPool
from portway.store.vector_stores import NewChunk, VectorStoreFileRecord, VectorStoreRepository

logger = logging.getLogger(__name__)

JobKey = tuple[str, str]  # (vector_store_id, file_id)


class Indexer:
    def __init__(
        self,
        stores: VectorStoreRepository,
        files: FileService,
        embedder: Embedder | None = None,
        concurrency: int = 2,
        timeout: float = 60.0,
    ) -> None:
        self._stores = stores
        self._files = files
        self._embedder = embedder
        self._slots = asyncio.Semaphore(concurrency)
        self._pool = ExtractionPool(concurrency, timeout)
        self._tasks: dict[JobKey, asyncio.Task[None]] = {}

    async def start(self) -> None:
        pending = await self._stores.pending_files()
        if pending:
            logger.info("resuming indexing of %d vector store files", len(pending))
        self.submit(pending)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._pool.close()

    def submit(self, jobs: Iterable[VectorStoreFileRecord]) -> None:
        for job in jobs:
            key = (job.vector_store_id, job.file_id)
            previous = self._tasks.pop(key, None)
            if previous is not None:
                previous.cancel()
            task = asyncio.create_task(self._run(job), name=f"index {key[0]}/{key[1]}")
            self._tasks[key] = task
            task.add_done_callback(lambda done, key=key: self._forget(key, done))

    def cancel(self, vector_store_id: str, file_ids: Iterable[str]) -> None:
        for file_id in file_ids:
            task = self._tasks.pop((vector_store_id, file_id), None)
            if task is not None:
                task.cancel()

    def cancel_store(self, vector_store_id: str) -> None:
        self.cancel(vector_store_id, [f for s, f in list(self._tasks) if s == vector_store_id])

    async def idle(self) -> None:
        """Wait until every submitted job has finished (for tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def settle(self, store_ids: Collection[str], max_seconds: float) -> bool:
        """Wait up to ``max_seconds`` s for this process's jobs of these stores; False at once
        when it runs none of them (another process may be indexing them)."""
        tasks = [task for (store, _), task in self._tasks.items() if store in store_ids]
        if not tasks:
            return False
        await asyncio.wait(tasks, timeout=max_seconds)
        return True

    def _forget(self, key: JobKey, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def _run(self, job: VectorStoreFileRecord) -> None:
        async with self._slots:
            try:
                if await self._stores.is_pending(job):
                    await self._index(job)
            except asyncio.CancelledError:
                raise
            except ExtractionError as error:
                await self._stores.fail_file(job, error.code, str(error))
            except Exception:
                logger.exception("indexing %s in %s failed", job.file_id, job.vector_store_id)
                await self._stores.fail_file(
                    job, "server_error", "The file could not be indexed (server error)."
                )

    async def _index(self, job: VectorStoreFileRecord) -> None:
        record = (await self._files.get_many(job.tenant, [job.file_id])).get(job.file_id)
        if record is None:
            raise ExtractionError("the file no longer exists")
        data = await self._files.read(record)
        chunking = Chunking(job.chunk_size_tokens, job.chunk_overlap_tokens)
        pieces = await self._pool.prepare(record.filename, data, chunking)
        vectors = await self._embed([piece.text for piece in pieces])
        chunks = [
            NewChunk(position, piece.tokens, piece.text, vectors[position] if vectors else None)
            for position, piece in enumerate(pieces)
        ]
        usage = sum(len(chunk.text.encode()) + len(chunk.embedding or b"") for chunk in chunks)
        if not await self._stores.complete_file(job, chunks, usage):
            logger.info("discarded stale indexing of %s in %s", job.file_id, job.vector_store_id)

    async def _embed(self, texts: list[str]) -> list[bytes] | None:
        if self._embedder is None or not texts:
            return None
        try:
            return await self._embedder.embed(texts, endpoint="retrieval.index")
        except PortwayError as error:
            # Full-text search still works without vectors; say so rather than fail.
            logger.warning("embedding chunks failed, indexed for full-text only: %s", error)
            return None
