"""``Responses``: the Responses and Conversations services, built once and owned by ``Services``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from portway.accounting.tokenizer import TokenizerService
from portway.assistants.builtin import BuiltinTool
from portway.assistants.context import ContextBuilder
from portway.assistants.principals import RunPrincipals
from portway.assistants.tool_policy import ToolLimits
from portway.assistants.workers import RunWorkers, worker_id
from portway.config import Settings
from portway.context.compactor import Compactor
from portway.context.policy import ContextPolicy
from portway.context.sealing import CompactionSealer
from portway.keys.service import KeyService
from portway.pipeline.client import ModelClient
from portway.responses.compaction import ResponseCompaction
from portway.responses.conversations import ConversationService
from portway.responses.engine import ResponseEngine
from portway.responses.jobs import ResponseJobEngine, ResponseJobLifecycle
from portway.responses.native import NativeResponses
from portway.responses.service import ResponseService
from portway.routing.catalog import ModelCatalog
from portway.store import Database
from portway.store.models.responses import ResponseRow
from portway.store.responses import ResponseStore


@dataclass
class Responses:
    responses: ResponseService
    conversations: ConversationService
    workers: RunWorkers[ResponseRow]
    # Create calls for models whose upstream has its own Responses API (``responses: native``).
    native: NativeResponses

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        models: ModelClient,
        catalog: ModelCatalog,
        builtin_tools: Mapping[str, BuiltinTool],
        tokenizer: TokenizerService,
        keys: KeyService,
        known_model: Callable[[str], bool],
        compactor: Compactor,
        compaction_sealer: CompactionSealer,
    ) -> Responses:
        """``builtin_tools`` is read on every call, so tools registered later are seen."""
        store = ResponseStore(database)
        assistants = settings.assistants
        tool_limits = ToolLimits(assistants.max_tool_rounds, assistants.max_tool_output_chars)
        engine = ResponseEngine(
            models, builtin_tools, settings.responses.max_model_calls, tool_limits, clock=time.time
        )
        context = ContextBuilder(
            catalog, tokenizer, settings.accounting.default_max_output_tokens, tool_limits
        )
        compaction = ResponseCompaction(
            compactor,
            compaction_sealer,
            context,
            models,
            ContextPolicy.from_models(settings.models).groups,
        )
        service = ResponseService(
            store,
            engine,
            context,
            known_model,
            RunPrincipals(keys),
            settings.responses.stream_poll_seconds,
            compaction,
        )
        # Background responses are a job kind of the run workers, on their settings
        # (slots, leases, attempts).
        owner = worker_id()
        workers: RunWorkers[ResponseRow] = RunWorkers(
            runs=store,
            engine=ResponseJobEngine(service),
            lifecycle=ResponseJobLifecycle(service, owner),
            config=assistants,
            concurrency=assistants.max_concurrent_runs,
            owner=owner,
            single_process=database.single_process,
            kind="response",
        )
        service.attach(workers)
        return cls(
            responses=service,
            conversations=ConversationService(store),
            workers=workers,
            native=NativeResponses(models, catalog),
        )

    async def start(self) -> None:
        """Recover background responses left behind by a stopped process, then start."""
        await self.workers.start()

    async def close(self) -> None:
        await self.workers.close()
