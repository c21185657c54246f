"""Build the retrieval services on a test database, with optional concept embeddings; sample
documents; an indexer that never indexes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from portway.accounting.estimate import UsageEstimator
from portway.accounting.tokenizer import TokenizerService
from portway.config import Settings
from portway.pipeline.client import ModelClient
from portway.pipeline.service import Pipeline
from portway.providers.registry import ProviderRegistry
from portway.retrieval.indexer import Indexer
from portway.retrieval.wiring import Retrieval
from portway.routing.catalog import ModelCatalog
from portway.routing.router import Router
from portway.security.system import SystemPrincipal
from portway.store import Database
from portway.store.budgets import BudgetRepository
from tests.fakes.embedder import ConceptEmbedder

REFUNDS = """# Refund policy
Customers may return unused items within 30 days of delivery. Refunds are paid to the
original payment method within five business days after the warehouse receives the parcel.
"""
SHIPPING = """# Shipping
Orders leave our warehouse in Lisbon every weekday. Standard delivery inside the EU takes
three to five days; express courier delivery takes one day.
"""
SECURITY = """# Account security
Enable two-factor authentication in the settings page. Passwords must have twelve
characters. We never ask for your password by email.
"""


class StalledIndexer(Indexer):
    """Accepts jobs but never runs them: files stay in_progress (as when another process
    is indexing them)."""

    def submit(self, jobs: object) -> None:
        return None


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
    # The door with only its router: these tests are about retrieval, not accounting.
    system = SystemPrincipal(settings.system_principal, BudgetRepository(database))
    router = Router(catalog)
    estimator = UsageEstimator(TokenizerService(), catalog, settings.accounting, router)
    models = ModelClient(Pipeline.of([router], estimator.count_prompt), system)
    services = Retrieval.build(settings, database, catalog, models)
    await services.start()
    return services


async def add_text_file(services: Retrieval, tenant: str, name: str, text: str) -> str:
    record = await services.files.upload(tenant, name, "assistants", io.BytesIO(text.encode()))
    return record.id
