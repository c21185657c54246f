"""Optional embeddings for hybrid search: vectors from a configured model, cosine ranking.

The model is called through the pipeline (``pipeline.client.ModelClient``), so indexing
and query embeddings are limited, budgeted, routed (retries, fallbacks) and ledgered like
any call: a query as the caller searching (a key, a run's creator), indexing as the system
principal; the ledger's ``endpoint`` says which of the two.

Vectors are L2-normalised float32 arrays stored as bytes in ``vector_store_chunks``; the
nearest neighbours are found by a brute-force dot product (numpy, in a thread) over the
embedded chunks of the searched stores, which is fine up to ~10^5 chunks per search.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

import numpy as np

from portway.errors import UpstreamError
from portway.pipeline.client import ModelClient
from portway.protocol.embeddings import EmbeddingRequest
from portway.security.principal import Principal


def pack(vector: Sequence[float]) -> bytes:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return (array / norm if norm > 0 else array).tobytes()


def _vector(embedding: list[float] | str) -> list[float] | np.ndarray:
    if isinstance(embedding, str):  # encoding_format=base64 from some upstreams
        return np.frombuffer(base64.b64decode(embedding), dtype=np.float32)
    return embedding


class Embedder:
    """Embeds texts with a public model name, in batches, through the pipeline."""

    def __init__(self, models: ModelClient, model: str, batch_size: int = 64) -> None:
        self.model = model
        self._models = models
        self._batch_size = batch_size

    async def embed(
        self, texts: Sequence[str], *, endpoint: str, principal: Principal | None = None
    ) -> list[bytes]:
        """Unit vectors of ``texts``, billed to ``principal`` (None: the system principal);
        ``endpoint`` names the job in the ledger."""
        vectors: list[bytes] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            request = EmbeddingRequest(model=self.model, input=batch)
            result = await self._models.embed(request, principal=principal, endpoint=endpoint)
            data = sorted(result["data"], key=lambda item: item["index"])
            if len(data) != len(batch):
                raise UpstreamError(
                    f"The embedding model returned {len(data)} vectors for {len(batch)} texts."
                )
            vectors.extend(pack(_vector(item["embedding"])) for item in data)
        return vectors


def _nearest(query: bytes, candidates: list[tuple[int, bytes]], k: int) -> list[tuple[int, float]]:
    wanted = np.frombuffer(query, dtype=np.float32)
    same_size = [(i, v) for i, v in candidates if len(v) == len(query)]
    if not same_size:
        return []
    ids = np.fromiter((i for i, _ in same_size), dtype=np.int64, count=len(same_size))
    matrix = np.frombuffer(b"".join(v for _, v in same_size), dtype=np.float32)
    similarities = matrix.reshape(len(same_size), -1) @ wanted
    order = np.argsort(-similarities, kind="stable")[:k]
    return [(int(ids[i]), float(similarities[i])) for i in order]


async def nearest(
    query: bytes, candidates: list[tuple[int, bytes]], k: int
) -> list[tuple[int, float]]:
    """The ``k`` candidates most similar to ``query`` (cosine), best first."""
    return await asyncio.to_thread(_nearest, query, candidates, k)
