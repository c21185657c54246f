"""Search over vector stores: full-text ranking, fused with embeddings when configured.

- Query text is reduced to word terms (lower-cased ``\\w+``, English stop words dropped,
  at most 64); the store's full-text index ranks chunks matching any term.
- With an embedding model (``retrieval.embedding_model``), the query is embedded too and
  the nearest chunks by cosine form a second ranking; both rankings are fused by
  reciprocal rank fusion, ``Σ 1/(60 + rank)``, scaled so a chunk ranked first by every
  ranking scores 1.0. Embedding failures degrade to full-text only (logged).
- Attribute filters select the files first; only their chunks are ranked.

Scores are relative: full-text relevance divided by the best hit's (so the best hit of a
full-text search scores 1.0), or the scaled fusion score. ``score_threshold`` therefore
reads "at least this fraction of the best hit's relevance".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from portway.errors import PortwayError
from portway.retrieval.embeddings import Embedder, nearest
from portway.retrieval.filters import matches
from portway.security.principal import Principal
from portway.store.chunks import ChunkRepository, ChunkText, ScoredChunk
from portway.store.vector_stores import VectorStoreRepository
from portway.vector_stores.wire import Filter

logger = logging.getLogger(__name__)

RRF_K = 60
MAX_TERMS = 64
_WORD = re.compile(r"\w+")
_STOP_WORDS = frozenset(
    """a an and are as at be but by can could did do does for from had has have how i if in
    into is it its me my no not of on or our so than that the their them then there these
    they this to us was we were what when where which who whom why will with would you your
    about after all also any been before being both each few more most other over same should
    some such only own very just""".split()  # noqa: SIM905 (a word list reads best as text)
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk: ChunkText
    score: float


def query_terms(queries: Sequence[str]) -> list[str]:
    """Distinct lower-case word terms of the queries, stop words dropped (kept if all are)."""
    words = [word.lower() for query in queries for word in _WORD.findall(query)]
    content = [word for word in words if word not in _STOP_WORDS] or words
    return list(dict.fromkeys(content))[:MAX_TERMS]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]]) -> list[ScoredChunk]:
    """Fuse rankings of chunk ids; scores in (0, 1], 1.0 = first in every ranking."""
    if not rankings:
        return []
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    best = len(rankings) / (RRF_K + 1)
    ordered = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return [ScoredChunk(chunk_id, score / best) for chunk_id, score in ordered]


def relative(hits: Sequence[ScoredChunk]) -> list[ScoredChunk]:
    """Scores divided by the best one (1.0 for the best hit; all 1.0 if all are 0)."""
    best = max((hit.score for hit in hits), default=0.0)
    if best <= 0:
        return [ScoredChunk(hit.chunk_id, 1.0) for hit in hits]
    return [ScoredChunk(hit.chunk_id, hit.score / best) for hit in hits]


class SearchService:
    def __init__(
        self,
        stores: VectorStoreRepository,
        chunks: ChunkRepository,
        embedder: Embedder | None = None,
        candidates: int = 50,
    ) -> None:
        self._stores = stores
        self._chunks = chunks
        self._embedder = embedder
        self._candidates = candidates

    @property
    def hybrid(self) -> bool:
        return self._embedder is not None

    async def search(
        self,
        store_ids: Sequence[str],
        queries: Sequence[str],
        max_results: int,
        filters: Filter | None = None,
        score_threshold: float = 0.0,
        principal: Principal | None = None,
    ) -> list[SearchHit]:
        """The best chunks of the given (already authorised) stores, best first; the query
        embedding (hybrid search) is billed to ``principal`` (None: the system principal)."""
        file_ids: set[str] | None = None
        if filters is not None:
            attributes = await self._stores.file_attributes(store_ids)
            file_ids = {f for f, attrs in attributes.items() if matches(filters, attrs)}
            if not file_ids:
                return []
        limit = max(self._candidates, max_results)
        full_text = await self._chunks.full_text(store_ids, query_terms(queries), limit, file_ids)
        ranked = relative(full_text)
        semantic = await self._semantic(store_ids, queries, limit, file_ids, principal)
        if semantic is not None:
            ranked = reciprocal_rank_fusion(
                [[hit.chunk_id for hit in full_text], [chunk_id for chunk_id, _ in semantic]]
            )
        ranked = [hit for hit in ranked if hit.score >= score_threshold][:max_results]
        texts = await self._chunks.texts([hit.chunk_id for hit in ranked])
        return [
            SearchHit(texts[hit.chunk_id], hit.score) for hit in ranked if hit.chunk_id in texts
        ]

    async def _semantic(
        self,
        store_ids: Sequence[str],
        queries: Sequence[str],
        limit: int,
        file_ids: set[str] | None,
        principal: Principal | None,
    ) -> list[tuple[int, float]] | None:
        if self._embedder is None:
            return None
        try:
            [query_vector] = await self._embedder.embed(
                [" ".join(queries)], endpoint="retrieval.search", principal=principal
            )
        except PortwayError as error:
            logger.warning("query embedding failed, full-text only: %s", error.message)
            return None
        candidates = await self._chunks.embeddings(store_ids, file_ids)
        return await nearest(query_vector, candidates, limit)
