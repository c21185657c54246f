"""Builds what the summarize and retrieve strategies need (one, shared)."""

from __future__ import annotations

from portway.accounting.estimate import UsageEstimator
from portway.config import ConfigError, Settings
from portway.context.compactor import Compactor
from portway.context.recall import Recall
from portway.context.summarizer import Summarizer
from portway.context.window import smallest_window
from portway.pipeline.client import ModelClient
from portway.retrieval.embeddings import Embedder
from portway.store import Database
from portway.store.context import ContextRepository


def build_compactor(
    settings: Settings, database: Database, estimator: UsageEstimator, models: ModelClient
) -> Compactor:
    """Summaries in the database, written through ``models``; older turns indexed with
    the retrieval settings' embedding model when one is set."""
    repository = ContextRepository(database)
    embedder = None
    embedding_model = settings.retrieval.embedding_model
    if embedding_model is not None:
        if embedding_model not in estimator.catalog:
            raise ConfigError(
                f"retrieval.embedding_model: no model named {embedding_model!r} is declared "
                "in models"
            )
        embedder = Embedder(models, embedding_model, settings.retrieval.embedding_batch_size)
    return Compactor(
        repository,
        Summarizer(models),
        Recall(repository, embedder),
        lambda model: smallest_window(estimator.deployments_of(model)),
    )
