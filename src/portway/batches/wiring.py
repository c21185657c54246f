"""``Batches``: the Batch API's services, built once and owned by ``Services``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from portway.assistants.principals import RunPrincipals
from portway.assistants.workers import RunWorkers, worker_id
from portway.batches.endpoints import LineHandler, default_handlers
from portway.batches.engine import BatchEngine
from portway.batches.lifecycle import BatchLifecycle
from portway.batches.service import BatchService
from portway.config import Settings
from portway.keys.service import KeyService
from portway.pipeline.client import ModelClient
from portway.retrieval.files import FileService
from portway.store import Database
from portway.store.batches import BatchStore
from portway.store.models.batches import BatchRow


@dataclass
class Batches:
    service: BatchService
    workers: RunWorkers[BatchRow]
    # The line dispatcher: url → handler (``/v1/responses``' handler comes from its API).
    handlers: dict[str, LineHandler]

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        models: ModelClient,
        files: FileService,
        keys: KeyService,
        served: Mapping[str, LineHandler],
    ) -> Batches:
        """``served``: the handlers of endpoints other APIs serve (``/v1/responses``)."""
        config = settings.batches
        store = BatchStore(database)
        lifecycle = BatchLifecycle(store, files)
        handlers = {**default_handlers(models), **served}
        owner = worker_id()
        engine = BatchEngine(
            store=store,
            lifecycle=lifecycle,
            files=files,
            handlers=handlers,
            principals=RunPrincipals(keys),
            config=config,
            owner=owner,
        )
        # The run workers' claim and lease machinery, driving batches.
        workers: RunWorkers[BatchRow] = RunWorkers(
            runs=store,
            engine=engine,
            lifecycle=lifecycle,
            config=config,
            concurrency=config.max_concurrent_batches,
            owner=owner,
            single_process=database.single_process,
            kind="batch",
        )
        service = BatchService(
            store=store, lifecycle=lifecycle, files=files, handlers=handlers, workers=workers
        )
        return cls(service=service, workers=workers, handlers=handlers)

    async def start(self) -> None:
        """Recover batches left behind by a stopped process, then start the workers."""
        await self.workers.start()

    async def close(self) -> None:
        await self.workers.close()
