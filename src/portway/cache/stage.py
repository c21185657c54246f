"""The cache stage: answers a chat call from the cache when it can, and stores fresh answers.

Contract: sits just outside the router. Per call it resolves the model's policy and
the request's cache headers, then looks up the exact key (namespace = the principal's
tenant, or ``shared``; a client may add its own sub-namespace with
``x-portway-cache-namespace``), then, for models with the semantic cache on, the
nearest earlier questions in the same context, serving one only when its answer-changing
features (numbers, quotes, negations, names, key terms, language: ``semantic/guard.py``)
equal the new question's. A hit short-circuits the pipeline with a fresh response (new
``id``/``created``, usage as first reported plus cached tokens) or a replayed stream; a
miss calls on and stores the answer once it is complete (a stream
only when it finished: never after an error or a disconnect). Every call of a cached
model gets ``x-portway-cache: hit|miss|semantic-hit|bypass`` and ``ctx.cache_status``;
calls of zero-retention (``no_store``) keys always bypass it: nothing of theirs is stored.
A failing backend never fails a call: it is logged and counted, and the call goes on.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from portway.cache.backends.base import CacheBackend
from portway.cache.entry import CachedCompletion, from_completion
from portway.cache.keys import EntryKey, RequestKeys, request_keys
from portway.cache.policy import (
    CACHE_HEADER,
    SIMILARITY_HEADER,
    Decision,
    ModelPolicy,
    decide,
    sub_namespace,
)
from portway.cache.semantic.embedder import Embedder, Vector
from portway.cache.semantic.guard import PromptFeatures, prompt_features
from portway.cache.semantic.index import Match, MatrixIndex, Partition
from portway.cache.semantic.redis_index import RedisStreamIndex
from portway.cache.stats import CacheStats
from portway.cache.streams import StreamAssembler, replay_chunks
from portway.config import CacheConfig
from portway.errors import PortwayError
from portway.pipeline.base import CallContext, CompleteHandler, Operation, Stage, StreamHandler
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict

logger = logging.getLogger(__name__)

# What a cache backend or an embedding call may fail with; such failures degrade to a miss.
BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    sqlite3.Error,
    OSError,
    asyncio.TimeoutError,
)
SHARED_NAMESPACE = "shared"
# Near matches read per lookup: the guard may refuse the nearest, a later one may pass.
SEMANTIC_CANDIDATES = 5

HIT = "hit"
SEMANTIC_HIT = "semantic-hit"
MISS = "miss"
BYPASS = "bypass"


@dataclass(slots=True)
class _Plan:
    """One call's cache work: its keys, what it may do, and its embedding once computed."""

    keys: RequestKeys
    decision: Decision
    policy: ModelPolicy
    max_prompt_chars: int
    vector: Vector | None = None
    prompt: PromptFeatures | None = None

    @property
    def semantic(self) -> bool:
        text = self.keys.last_user_text
        return self.policy.semantic and text is not None and 0 < len(text) <= self.max_prompt_chars

    def features(self) -> PromptFeatures | None:
        """The last user message's answer-changing features (read once, when first needed)."""
        if self.prompt is None and self.semantic and self.keys.last_user_text:
            self.prompt = prompt_features(self.keys.last_user_text, self.max_prompt_chars)
        return self.prompt

    @property
    def partition(self) -> Partition:
        exact = self.keys.exact
        return (exact.namespace, exact.model, self.keys.context)


@dataclass(frozen=True, slots=True)
class CacheHit:
    entry: CachedCompletion
    status: str
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class StaleAnswer:
    """A cached answer past its TTL, for serving when no deployment can answer."""

    entry: CachedCompletion
    model: str

    def completion(self) -> ChatCompletionDict:
        return self.entry.to_completion(self.model)

    def chunks(self, *, include_usage: bool) -> list[ChatCompletionChunkDict]:
        return list(replay_chunks(self.entry, self.model, include_usage=include_usage))


class CacheStage(Stage):
    # Chat answers only: embeddings are cheap, deterministic per model and not worth a
    # second copy (the embed pipeline has no cache stage).
    operations: ClassVar[frozenset[Operation]] = frozenset({"chat"})

    def __init__(
        self,
        config: CacheConfig,
        policies: Mapping[str, ModelPolicy],
        backend: CacheBackend,
        *,
        embedder: Embedder | None = None,
        index: MatrixIndex | RedisStreamIndex | None = None,
        redis: Redis | None = None,
    ) -> None:
        self.config = config
        self.policies = dict(policies)
        self.backend = backend
        self.embedder = embedder
        self.index = index
        self._redis = redis
        self.stats = CacheStats()

    async def start(self) -> None:
        await self.backend.start()
        if self.embedder is not None:
            await self.embedder.start()
        if self.index is not None:
            await self.index.start()

    async def close(self) -> None:
        if self.index is not None:
            await self.index.close()
        if self.embedder is not None:
            await self.embedder.close()
        await self.backend.close()
        if self._redis is not None:
            await self._redis.aclose()

    # Planning ------------------------------------------------------------

    def namespace(self, ctx: CallContext) -> str:
        base = SHARED_NAMESPACE if self.config.shared else ctx.principal.tenant
        sub = sub_namespace(ctx.request_headers)
        return base if sub is None else f"{base}/{sub}"

    def _plan(self, ctx: CallContext) -> _Plan | None:
        """What this call may do with the cache; None when it neither reads nor writes."""
        policy = self.policies.get(ctx.model)
        if policy is None or not policy.enabled:
            return None
        if ctx.principal.no_store:
            # Zero-retention keys: their prompts and answers are kept nowhere, not even here.
            self.stats.bypasses += 1
            self._mark(ctx, BYPASS)
            return None
        decision = decide(policy, ctx.request, ctx.request_headers, self.config.max_ttl)
        if decision.skipped:
            self.stats.bypasses += 1
            self._mark(ctx, BYPASS)
            return None
        keys = request_keys(ctx.request, ctx.model, self.namespace(ctx))
        return _Plan(keys, decision, policy, self.config.semantic.max_prompt_chars)

    # Lookup and store ------------------------------------------------------

    async def _read(self, key: EntryKey) -> CachedCompletion | None:
        try:
            raw = await self.backend.get(key)
        except BACKEND_ERRORS as error:
            self.stats.errors += 1
            logger.warning("cache read failed (%s): %s", type(error).__name__, error)
            return None
        return CachedCompletion.from_bytes(raw) if raw is not None else None

    async def _embed(self, plan: _Plan) -> Vector | None:
        if plan.vector is None and self.embedder is not None and plan.keys.last_user_text:
            try:
                plan.vector = await self.embedder.embed(plan.keys.last_user_text)
            except (*BACKEND_ERRORS, PortwayError) as error:
                self.stats.errors += 1
                logger.warning("cache embedding failed (%s): %s", type(error).__name__, error)
        return plan.vector

    async def _lookup(self, plan: _Plan) -> CacheHit | None:
        now = time.time()
        entry = await self._read(plan.keys.exact)
        if entry is not None and not entry.expired(now):
            return CacheHit(entry, HIT)
        if not plan.semantic or self.index is None:
            return None
        vector = await self._embed(plan)
        if vector is None:
            return None
        matches: list[Match] = []
        try:
            matches = await self.index.search(
                plan.partition, vector, plan.policy.threshold, SEMANTIC_CANDIDATES
            )
        except BACKEND_ERRORS as error:
            self.stats.errors += 1
            logger.warning("semantic index search failed (%s): %s", type(error).__name__, error)
        exact = plan.keys.exact
        for match in matches:
            found = await self._read(EntryKey(exact.namespace, exact.model, match.key))
            if found is None or found.expired(now):
                await self.index.remove(match.key)
                continue
            conflict = self._conflict(plan, found)
            if conflict is None:
                return CacheHit(found, SEMANTIC_HIT, match.similarity)
            self.stats.semantic_refusals += 1
            logger.debug(
                "semantic cache: refused a match at %.4f, its %s differ", match.similarity, conflict
            )
        return None

    @staticmethod
    def _conflict(plan: _Plan, found: CachedCompletion) -> str | None:
        """Why ``found`` may not answer this call's question; None when it may."""
        asked = plan.features()
        if asked is None or found.features is None:
            return "features"  # unknown: an entry without features serves exact hits only
        return asked.conflict(found.features)

    async def _store(self, plan: _Plan, entry: CachedCompletion | None) -> None:
        if entry is None:
            return
        if plan.semantic and self.index is not None:
            entry = replace(entry, features=plan.features())
        data = entry.to_bytes()
        if len(data) > self.config.max_entry_bytes:
            return
        try:
            await self.backend.set(
                plan.keys.exact, data, keep_for=plan.decision.ttl + self.config.stale_ttl
            )
            self.stats.stores += 1
            if plan.semantic and self.index is not None:
                vector = await self._embed(plan)
                if vector is not None:
                    await self.index.add(plan.partition, vector, plan.keys.exact.digest)
        except BACKEND_ERRORS as error:
            self.stats.errors += 1
            logger.warning("cache write failed (%s): %s", type(error).__name__, error)

    def _mark(self, ctx: CallContext, status: str, similarity: float | None = None) -> None:
        ctx.cache_status = status
        ctx.response_headers[CACHE_HEADER] = status
        if similarity is not None:
            ctx.response_headers[SIMILARITY_HEADER] = f"{similarity:.4f}"

    async def _begin(self, ctx: CallContext, plan: _Plan) -> CacheHit | None:
        """Look up (when allowed) and label the call; a hit is returned, already counted."""
        if not plan.decision.read:
            self.stats.bypasses += 1
            self._mark(ctx, BYPASS)
            return None
        hit = await self._lookup(plan)
        if hit is None:
            self.stats.misses += 1
            self._mark(ctx, MISS)
            return None
        self.stats.record_hit(hit.entry.usage, semantic=hit.status == SEMANTIC_HIT)
        self._mark(ctx, hit.status, hit.similarity)
        ctx.usage = hit.entry.cached_usage()  # type: ignore[assignment]
        return hit

    # The stage -------------------------------------------------------------

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ChatCompletionDict:
        plan = self._plan(ctx)
        if plan is None:
            return await call_next(ctx)
        hit = await self._begin(ctx, plan)
        if hit is not None:
            return hit.entry.to_completion(ctx.model)
        completion = await call_next(ctx)
        if plan.decision.write:
            await self._store(
                plan, from_completion(completion, now=time.time(), ttl=plan.decision.ttl)
            )
        return completion

    def stream(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        # Planning is synchronous, so calls the cache leaves alone get the inner stream
        # itself, without one more generator layer per chunk.
        plan = self._plan(ctx)
        if plan is None:
            return call_next(ctx)
        return self._cached_stream(ctx, plan, call_next)

    async def _cached_stream(
        self, ctx: CallContext, plan: _Plan, call_next: StreamHandler
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        hit = await self._begin(ctx, plan)
        if hit is not None:
            include_usage = ctx.request.include_usage
            for chunk in replay_chunks(hit.entry, ctx.model, include_usage=include_usage):
                yield chunk
            return
        assembler = StreamAssembler() if plan.decision.write else None
        async with aclosing(call_next(ctx)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                if assembler is not None:
                    assembler.add(chunk)
                yield chunk
        # Reached only when the stream ran to its end: errors and disconnects skip this.
        if assembler is not None:
            await self._store(plan, assembler.result(now=time.time(), ttl=plan.decision.ttl))

    # Degradation, administration -------------------------------------------

    async def lookup_stale(self, ctx: CallContext) -> StaleAnswer | None:
        """The cached answer for this exact request even past its TTL (None if none is kept)."""
        policy = self.policies.get(ctx.model)
        if policy is None or not policy.enabled:
            return None
        entry = await self._read(request_keys(ctx.request, ctx.model, self.namespace(ctx)).exact)
        return StaleAnswer(entry, ctx.model) if entry is not None else None

    async def purge(self, namespace: str | None = None, model: str | None = None) -> int:
        deleted = await self.backend.purge(namespace, model)
        if self.index is not None:
            await self.index.purge(namespace, model)
        return deleted

    async def describe(self) -> dict[str, Any]:
        usage = await self.backend.usage()
        description: dict[str, Any] = {
            "object": "cache.stats",
            "enabled": True,
            "backend": self.backend.name,
            "entries": usage.entries,
            "bytes": usage.bytes,
            **self.stats.to_dict(),
        }
        if self.index is not None:
            description["semantic"] = {
                "index": self.index.name,
                "entries": len(self.index),
                "embedding_model": self.embedder.name if self.embedder else None,
            }
        return description
