"""Builds the retrieval services (files, vector stores, indexing, search, file_search)."""

from __future__ import annotations

from dataclasses import dataclass

from portway.config import ConfigError, Settings
from portway.pipeline.client import ModelClient
from portway.retrieval.chunking import Chunking
from portway.retrieval.embeddings import Embedder
from portway.retrieval.file_search import FileSearchTool
from portway.retrieval.files import FileService
from portway.retrieval.indexer import Indexer
from portway.retrieval.search import SearchService
from portway.retrieval.storage import FileStorage
from portway.retrieval.thread_stores import ThreadVectorStores
from portway.routing.catalog import ModelCatalog
from portway.store import Database
from portway.store.chunks import ChunkRepository
from portway.store.files import FileRepository
from portway.store.vector_stores import VectorStoreRepository
from portway.vector_stores.serving import VectorStoreService


@dataclass
class Retrieval:
    files: FileService
    vector_stores: VectorStoreService
    indexer: Indexer
    file_search: FileSearchTool
    thread_stores: ThreadVectorStores

    @classmethod
    def build(
        cls, settings: Settings, database: Database, catalog: ModelCatalog, models: ModelClient
    ) -> Retrieval:
        """``models``: how the embedder reaches its model (through the pipeline)."""
        config = settings.retrieval
        embedder = None
        if config.embedding_model is not None:
            if config.embedding_model not in catalog:
                raise ConfigError(
                    f"retrieval.embedding_model: no model named {config.embedding_model!r} "
                    "is declared in models"
                )
            embedder = Embedder(models, config.embedding_model, config.embedding_batch_size)
        files = FileService(
            FileRepository(database),
            FileStorage(settings.files.storage_dir, settings.files.max_bytes),
            settings.files,
        )
        stores = VectorStoreRepository(database)
        indexer = Indexer(
            stores, files, embedder, config.indexing_concurrency, config.indexing_timeout
        )
        vector_stores = VectorStoreService(
            stores,
            files,
            indexer,
            SearchService(stores, ChunkRepository(database), embedder),
            Chunking(config.chunk_size_tokens, config.chunk_overlap_tokens),
        )
        return cls(
            files=files,
            vector_stores=vector_stores,
            indexer=indexer,
            file_search=FileSearchTool(vector_stores, config.max_num_results),
            thread_stores=ThreadVectorStores(vector_stores),
        )

    async def start(self) -> None:
        """After the database is migrated: prepare storage, resume interrupted indexing."""
        await self.files.start()
        await self.indexer.start()

    async def close(self) -> None:
        await self.files.close()
        await self.indexer.close()
