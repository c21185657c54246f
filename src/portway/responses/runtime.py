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
from portway.assistants.workers import worker_id
from portway.config import Settings
from portway.context.compactor import Compactor
from portway.context.policy import ContextPolicy
from portway.context.sealing import CompactionSealer
from portway.pipeline.client import ModelClient
from portway.responses.compaction import ResponseCompaction
from portway.responses.conversations import ConversationService
from portway.responses.engine import ResponseEngine
from portway.responses.native import NativeResponses
from portway.responses.service import ResponseService
from portway.responses.workers import ResponseWorkers
from portway.routing.catalog import ModelCatalog
from portway.security.keys import KeyService
from portway.store import Database
from portway.store.responses import ResponseStore


@dataclass
class Responses:
    responses: ResponseService
    conversations: ConversationService
    workers: ResponseWorkers
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
        # Background responses run on the run workers' settings (slots, leases, attempts).
        workers = ResponseWorkers(
            store=store,
            run=service.run_background,
            fail=service.fail_background,
            config=settings.assistants,
            owner=worker_id(),
            single_process=database.single_process,
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
