"""``Responses``: the Responses and Conversations services, built once and owned by ``Services``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from portway.accounting.tokenizer import TokenizerService
from portway.assistants.builtin import BuiltinTool
from portway.assistants.context import ContextBuilder
from portway.config import Settings
from portway.pipeline.client import ModelClient
from portway.responses.conversations import ConversationService
from portway.responses.engine import ResponseEngine
from portway.responses.service import ResponseService
from portway.routing.catalog import ModelCatalog
from portway.store import Database
from portway.store.responses import ResponseStore


@dataclass
class Responses:
    responses: ResponseService
    conversations: ConversationService

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        models: ModelClient,
        catalog: ModelCatalog,
        builtin_tools: Mapping[str, BuiltinTool],
        tokenizer: TokenizerService,
        known_model: Callable[[str], bool],
    ) -> Responses:
        """``builtin_tools`` is read on every call, so tools registered later are seen."""
        store = ResponseStore(database)
        engine = ResponseEngine(
            models, builtin_tools, settings.responses.max_model_calls, clock=time.time
        )
        context = ContextBuilder(catalog, tokenizer, settings.accounting.default_max_output_tokens)
        return cls(
            responses=ResponseService(store, engine, context, known_model),
            conversations=ConversationService(store),
        )
