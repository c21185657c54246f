"""``retrieve``: older turns of a conversation, indexed, and the ones relevant to the new
turn found again.

Contract: the turns a summary replaces are indexed once per conversation (``scope``: its
tenant and first turn, so a chat client resending its history and a stored chain rebuilt
each turn land in the same index) in the database's full-text index, with embeddings when
``retrieval.embedding_model`` is set (the embedder's calls go through the pipeline as the
caller, endpoint ``context.retrieve``). ``recall`` ranks them by the newest user message
(full text, fused with cosine similarity by reciprocal rank fusion when embedded, as
``file_search`` ranks chunks) and returns the best units that fit the room left, in
conversation order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from portway.context.prefixes import (
    content_text,
    conversation_scope,
    message_text,
    unit_text,
)
from portway.context.turns import Turns
from portway.errors import PortwayError
from portway.pipeline.base import CallContext
from portway.retrieval.embeddings import Embedder, nearest
from portway.retrieval.search import query_terms, reciprocal_rank_fusion
from portway.store.context import ContextRepository, TurnText

logger = logging.getLogger(__name__)

ENDPOINT = "context.retrieve"
CANDIDATES = 50


def latest_user_text(messages: Sequence[Any]) -> str:
    """What the newest user message says (its text, without the role a transcript adds)."""
    for message in reversed(messages):
        if message.role == "user":
            return content_text(message.content)
    return message_text(messages[-1]) if messages else ""


class Recall:
    def __init__(self, repository: ContextRepository, embedder: Embedder | None = None) -> None:
        self._repository = repository
        self._embedder = embedder

    async def recall(
        self,
        ctx: CallContext,
        messages: Sequence[Any],
        turns: Turns,
        before: int,
        most: int,
        room: int,
        unit_costs: Sequence[int],
    ) -> list[int]:
        """Units ``< before`` most relevant to the newest user message, that fit ``room``."""
        tenant = ctx.principal.tenant
        scope = conversation_scope(messages, turns, tenant)
        if scope is None or before <= 0 or room <= 0:
            return []
        await self._index(ctx, scope, messages, turns, before)
        query = latest_user_text(messages)
        full_text = await self._repository.search(scope, query_terms([query]), before, CANDIDATES)
        ranking = [position for position, _ in full_text]
        semantic = await self._semantic(ctx, scope, query, before)
        if semantic is not None:
            fused = reciprocal_rank_fusion([ranking, semantic])
            ranking = [hit.chunk_id for hit in fused]
        chosen: list[int] = []
        used = 0
        for unit in ranking:
            if len(chosen) >= most:
                break
            if unit < before and used + unit_costs[unit] <= room:
                chosen.append(unit)
                used += unit_costs[unit]
        return sorted(chosen)

    async def _index(
        self, ctx: CallContext, scope: str, messages: Sequence[Any], turns: Turns, before: int
    ) -> None:
        present = await self._repository.indexed_positions(scope)
        fresh = [
            TurnText(unit, unit_text(messages, turns.units[unit]))
            for unit in range(before)
            if unit not in present
        ]
        if not fresh:
            return
        vectors: list[bytes | None] | None = None
        if self._embedder is not None:
            try:
                embedded = await self._embedder.embed(
                    [turn.text for turn in fresh], endpoint=ENDPOINT, principal=ctx.principal
                )
                vectors = list(embedded)
            except PortwayError as error:  # full text alone still ranks them
                logger.warning("embedding older turns failed: %s", error.message)
        await self._repository.index_turns(ctx.principal.tenant, scope, fresh, vectors)

    async def _semantic(
        self, ctx: CallContext, scope: str, query: str, before: int
    ) -> list[int] | None:
        if self._embedder is None:
            return None
        try:
            [vector] = await self._embedder.embed(
                [query], endpoint=ENDPOINT, principal=ctx.principal
            )
        except PortwayError as error:
            logger.warning("embedding the new turn failed: %s", error.message)
            return None
        candidates = await self._repository.embeddings(scope, before)
        return [position for position, _ in await nearest(vector, candidates, CANDIDATES)]
