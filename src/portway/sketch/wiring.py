"""``Sketches``: the sketcher's services, built once and owned by ``Services``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from portway.assistants.principals import RunPrincipals
from portway.assistants.workers import RunWorkers, worker_id
from portway.config import Settings
from portway.keys.service import KeyService
from portway.pipeline.client import ModelClient
from portway.sketch.engine import SketchEngine
from portway.sketch.generate import SketchModel
from portway.sketch.lifecycle import SketchLifecycle
from portway.sketch.service import SketchService
from portway.store import Database
from portway.store.models.sketches import SketchRow
from portway.store.sketches import SketchStore


@dataclass
class Sketches:
    service: SketchService
    workers: RunWorkers[SketchRow]

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        models: ModelClient,
        keys: KeyService,
        known_model: Callable[[str], bool],
    ) -> Sketches:
        config = settings.sketch
        store = SketchStore(database)
        lifecycle = SketchLifecycle(store)
        owner = worker_id()
        engine = SketchEngine(
            store=store,
            lifecycle=lifecycle,
            model=SketchModel(models, config),
            principals=RunPrincipals(keys),
            owner=owner,
        )
        # The run workers' claim, lease and recovery machinery, driving sketches.
        workers: RunWorkers[SketchRow] = RunWorkers(
            runs=store,
            engine=engine,
            lifecycle=lifecycle,
            config=config,
            concurrency=config.max_concurrent,
            owner=owner,
            single_process=database.dialect == "sqlite",
            kind="sketch",
        )
        service = SketchService(
            store=store,
            workers=workers,
            config=config,
            default_model=settings.models[0].name if settings.models else None,
            known_model=known_model,
        )
        return cls(service=service, workers=workers)

    async def start(self) -> None:
        """Recover sketches left behind by a stopped process, then start the workers."""
        await self.workers.start()

    async def close(self) -> None:
        await self.workers.close()
