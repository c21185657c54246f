"""``Assistants``: the Assistants API's services, built once and owned by ``Services``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from portway.accounting.tokenizer import TokenizerService
from portway.assistants.builtin import BuiltinTool, ThreadFileIndex
from portway.assistants.context import ContextBuilder
from portway.assistants.engine import RunEngine
from portway.assistants.events import RunEvents
from portway.assistants.lifecycle import RunLifecycle
from portway.assistants.objects import ObjectService
from portway.assistants.principals import RunPrincipals
from portway.assistants.runs import RunService
from portway.assistants.serving import AssistantServing
from portway.assistants.tool_policy import ToolLimits
from portway.assistants.workers import RunWorkers, worker_id
from portway.config import Settings
from portway.keys.service import KeyService
from portway.pipeline.client import ModelClient
from portway.routing.catalog import ModelCatalog
from portway.store import Database
from portway.store.assistants import AssistantStore, RunStore
from portway.store.models.assistants import RunRow


@dataclass
class Assistants:
    serving: AssistantServing
    objects: ObjectService
    runs: RunService
    workers: RunWorkers[RunRow]
    events: RunEvents

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        models: ModelClient,
        catalog: ModelCatalog,
        builtin_tools: Mapping[str, BuiltinTool],
        thread_files: ThreadFileIndex,
        keys: KeyService,
        tokenizer: TokenizerService,
    ) -> Assistants:
        """``builtin_tools`` is read on every call, so tools registered later are seen."""
        config = settings.assistants
        store = AssistantStore(database)
        run_store = RunStore(database)
        events = RunEvents()
        lifecycle = RunLifecycle(run_store, events)
        owner = worker_id()
        engine = RunEngine(
            objects=store,
            runs=run_store,
            lifecycle=lifecycle,
            models=models,
            context=ContextBuilder(
                catalog,
                tokenizer,
                settings.accounting.default_max_output_tokens,
                ToolLimits(config.max_tool_rounds, config.max_tool_output_chars),
            ),
            builtin_tools=builtin_tools,
            thread_files=thread_files,
            principals=RunPrincipals(keys),
            config=config,
            owner=owner,
        )
        workers = RunWorkers(
            runs=run_store,
            engine=engine,
            lifecycle=lifecycle,
            config=config,
            concurrency=config.max_concurrent_runs,
            owner=owner,
            single_process=database.single_process,
        )
        objects = ObjectService(store, run_store, catalog, thread_files)
        runs = RunService(
            objects=objects,
            store=store,
            runs=run_store,
            lifecycle=lifecycle,
            workers=workers,
            events=events,
            config=config,
        )
        serving = AssistantServing(store, catalog)
        return cls(serving=serving, objects=objects, runs=runs, workers=workers, events=events)

    async def start(self) -> None:
        """Recover runs left behind by a stopped process, then start the workers."""
        await self.workers.start()

    async def close(self) -> None:
        await self.workers.close()
