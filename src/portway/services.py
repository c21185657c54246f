"""The ``Services`` object: everything a request needs, built once at start-up."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from portway.assistants.builtin import BuiltinTool
from portway.assistants.runtime import Assistants
from portway.config import Settings
from portway.pipeline.base import Stage
from portway.pipeline.chat import ChatService
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.router import Router
from portway.security.auth import Authenticator, MasterKeyAuthenticator
from portway.store import Database

logger = logging.getLogger(__name__)


def _model_cards(catalog: ModelCatalog, created: int) -> dict[str, dict[str, Any]]:
    cards: dict[str, dict[str, Any]] = {}
    for deployment in catalog.deployments:
        cards.setdefault(
            deployment.name,
            {
                "id": deployment.name,
                "object": "model",
                "created": created,
                "owned_by": deployment.config.provider,
            },
        )
    return cards


@dataclass
class Services:
    settings: Settings
    catalog: ModelCatalog
    authenticator: Authenticator
    chat: ChatService
    database: Database
    assistants: Assistants
    model_cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    # file_search / code_interpreter by type; the run engine reads it on every call.
    builtin_tools: dict[str, BuiltinTool] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, registry: ProviderRegistry | None = None) -> Services:
        """Compose the services from settings; raises ``ConfigError`` for bad provider names."""
        registry = registry or ProviderRegistry()
        catalog = ModelCatalog.from_configs(settings.models, registry)
        master_key = settings.master_key.get_secret_value() if settings.master_key else None
        stages: list[Stage] = [Router(catalog)]
        chat = ChatService(stages)
        database = Database(settings.database_url)
        builtin_tools: dict[str, BuiltinTool] = {}
        return cls(
            settings=settings,
            catalog=catalog,
            authenticator=MasterKeyAuthenticator(master_key),
            chat=chat,
            database=database,
            assistants=Assistants.build(settings, database, chat, catalog, builtin_tools),
            model_cards=_model_cards(catalog, int(time.time())),
            builtin_tools=builtin_tools,
        )

    async def start(self) -> None:
        if self.settings.master_key is None:
            logger.warning(
                "authentication is OFF: no master key is set, every /v1 call is accepted "
                "(set PORTWAY_MASTER_KEY or master_key in the config to require a key)"
            )
        await self.database.start()
        await self.catalog.start()
        await self.assistants.start()

    async def close(self) -> None:
        await self.assistants.close()
        await self.catalog.close()
        await self.database.close()
