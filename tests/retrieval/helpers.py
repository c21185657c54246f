"""Build the retrieval services on a test database, with optional concept embeddings."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from portway.config import Settings
from portway.providers.registry import ProviderRegistry
from portway.retrieval.wiring import Retrieval
from portway.routing.catalog import ModelCatalog
from portway.store import Database
from tests.fakes.embedder import ConceptEmbedder


async def start_retrieval(
    database: Database, directory: Path, *, embeddings: str | None = None, **retrieval: Any
) -> Retrieval:
    settings = Settings.model_validate(
        {
            "database_url": database.url,
            "files": {"storage_dir": str(directory / "files")},
            "models": [
                {"name": "concepts", "provider": "concepts"},
                {"name": "broken", "provider": "concepts", "options": {"fail": True}},
            ],
            "retrieval": {"embedding_model": embeddings, **retrieval},
        }
    )
    registry = ProviderRegistry(extra={"concepts": ConceptEmbedder})
    catalog = ModelCatalog.from_configs(settings.models, registry)
    services = Retrieval.build(settings, database, catalog)
    await services.start()
    return services


async def add_text_file(services: Retrieval, tenant: str, name: str, text: str) -> str:
    record = await services.files.upload(tenant, name, "assistants", io.BytesIO(text.encode()))
    return record.id
