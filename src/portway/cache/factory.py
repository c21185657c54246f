"""Build the cache stage from settings: backend, policies, embedder and index, once at start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from portway.cache.backends.base import CacheBackend
from portway.cache.backends.memory import MemoryBackend
from portway.cache.backends.redis import RedisBackend
from portway.cache.backends.sqlite import SQLiteBackend
from portway.cache.policy import resolve_policies
from portway.cache.semantic.embedder import Embedder, LocalEmbedder, ModelEmbedder
from portway.cache.semantic.index import MatrixIndex
from portway.cache.semantic.redis_index import RedisStreamIndex
from portway.cache.stage import CacheStage
from portway.config import CacheConfig, Settings
from portway.pipeline.client import ModelClient
from portway.routing.catalog import ModelCatalog

# A cache lookup must never hang a call: a slow or dead Redis becomes a miss quickly.
REDIS_CONNECT_TIMEOUT = 1.0
REDIS_TIMEOUT = 2.0

BackendFactory = Callable[[CacheConfig, "Redis | None"], CacheBackend]


def _redis_backend(config: CacheConfig, redis: Redis | None) -> CacheBackend:
    assert redis is not None, "settings validation guarantees redis_url for the redis backend"
    return RedisBackend(redis, config.redis_prefix)


BACKENDS: dict[str, BackendFactory] = {
    "memory": lambda config, _: MemoryBackend(config.max_bytes),
    "sqlite": lambda config, _: SQLiteBackend(config.sqlite_path, config.max_bytes),
    "redis": _redis_backend,
}


def _embedder(config: CacheConfig, models: ModelClient) -> Embedder:
    semantic = config.semantic
    if semantic.embedding_model == "local":
        path = Path(semantic.local_model_path) if semantic.local_model_path else None
        return LocalEmbedder(path)
    return ModelEmbedder(semantic.embedding_model, models)


def build_cache(
    settings: Settings, catalog: ModelCatalog, models: ModelClient
) -> CacheStage | None:
    """The cache stage, or None when caching is off (then the pipeline has no cache stage)."""
    config = settings.cache
    if not config.enabled:
        return None
    policies = resolve_policies(config, catalog.names())
    wants_semantic = any(policy.semantic for policy in policies.values())
    uses_redis = config.backend == "redis" or (wants_semantic and config.semantic.index == "redis")
    redis = None
    if uses_redis and settings.redis_url:
        redis = Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            socket_timeout=REDIS_TIMEOUT,
        )
    backend = BACKENDS[config.backend](config, redis)
    if not wants_semantic:
        return CacheStage(config, policies, backend, redis=redis)
    index: MatrixIndex | RedisStreamIndex
    if config.semantic.index == "redis" and redis is not None:
        index = RedisStreamIndex(redis, config.redis_prefix, config.semantic.max_entries)
    else:
        index = MatrixIndex(config.semantic.max_entries)
    return CacheStage(
        config,
        policies,
        backend,
        embedder=_embedder(config, models),
        index=index,
        redis=redis,
    )
