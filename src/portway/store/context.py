"""Repositories for context-window state: summaries by prefix hash, indexed older turns.

Contract: a summary is looked up by the keys of every prefix a conversation has (one
query) and saved once per key (a concurrent save of the same key keeps the first). Turns
are indexed once per ``(scope, position)``; ``search`` ranks a scope's turns before a
position by the backend's full-text relevance (FTS5 ``bm25`` on SQLite, ``ts_rank_cd``
over an OR of the terms on PostgreSQL), as the vector stores' chunks are ranked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from portway.store.database import Database
from portway.store.models.context import ContextSummaryRow, ContextTurnRow

_WORD = re.compile(r"\w+")

_SQLITE_SEARCH = """
SELECT t.position, bm25(fts_context_turns) AS rank
FROM fts_context_turns JOIN context_turns AS t ON t.id = fts_context_turns.rowid
WHERE fts_context_turns MATCH :match AND t.scope = :scope AND t.position < :before
ORDER BY rank LIMIT :limit
"""
_POSTGRES_SEARCH = """
SELECT t.position, ts_rank_cd(to_tsvector('english', t.text), q) AS rank
FROM context_turns AS t, to_tsquery('english', :match) AS q
WHERE to_tsvector('english', t.text) @@ q AND t.scope = :scope AND t.position < :before
ORDER BY rank DESC, t.position LIMIT :limit
"""


@dataclass(frozen=True, slots=True)
class StoredSummary:
    key: str
    units: int
    messages: int
    summary: str


@dataclass(frozen=True, slots=True)
class TurnText:
    position: int
    text: str


class ContextRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def summaries(self, tenant: str, keys: Sequence[str]) -> dict[str, StoredSummary]:
        """The stored summaries among ``keys`` (of this tenant), by key."""
        found: dict[str, StoredSummary] = {}
        async with self._db.connect() as connection:
            for start in range(0, len(keys), 500):
                rows = await connection.execute(
                    select(
                        ContextSummaryRow.key,
                        ContextSummaryRow.units,
                        ContextSummaryRow.messages,
                        ContextSummaryRow.summary,
                    ).where(
                        ContextSummaryRow.key.in_(list(keys[start : start + 500])),
                        ContextSummaryRow.tenant == tenant,
                    )
                )
                for key, units, messages, summary in rows.all():
                    found[key] = StoredSummary(key, units, messages, summary)
        return found

    async def save_summary(
        self,
        tenant: str,
        model: str,
        summary: StoredSummary,
        chain: str | None,
    ) -> None:
        values: dict[str, Any] = {
            "key": summary.key,
            "tenant": tenant,
            "model": model,
            "units": summary.units,
            "messages": summary.messages,
            "summary": summary.summary,
            "chain": chain,
            "created_at": time.time(),
        }
        try:
            async with self._db.write() as connection:
                await connection.execute(insert(ContextSummaryRow), [values])
        except IntegrityError:
            return  # another call summarized the same prefix first: same content

    async def indexed_positions(self, scope: str) -> set[int]:
        async with self._db.connect() as connection:
            rows = await connection.execute(
                select(ContextTurnRow.position).where(ContextTurnRow.scope == scope)
            )
            return {int(position) for position in rows.scalars().all()}

    async def index_turns(
        self,
        tenant: str,
        scope: str,
        turns: Sequence[TurnText],
        embeddings: Sequence[bytes | None] | None = None,
    ) -> None:
        """Index turns not indexed yet (a position already there is left as it is)."""
        if not turns:
            return
        now = time.time()
        vectors = embeddings or [None] * len(turns)
        rows = [
            {
                "scope": scope,
                "tenant": tenant,
                "position": turn.position,
                "text": turn.text,
                "embedding": vector,
                "created_at": now,
            }
            for turn, vector in zip(turns, vectors, strict=True)
        ]
        try:
            async with self._db.write() as connection:
                await connection.execute(insert(ContextTurnRow), rows)
        except IntegrityError:
            present = await self.indexed_positions(scope)
            fresh = [row for row in rows if row["position"] not in present]
            if fresh:
                async with self._db.write() as connection:
                    await connection.execute(insert(ContextTurnRow), fresh)

    async def search(
        self, scope: str, terms: Sequence[str], before: int, limit: int
    ) -> list[tuple[int, float]]:
        """(position, relevance ≥ 0) of the scope's turns before ``before``, best first."""
        words = [term for term in terms if _WORD.fullmatch(term)]
        if not words:
            return []
        postgres = self._db.dialect == "postgresql"
        if postgres:
            template, match = _POSTGRES_SEARCH, " | ".join(words)
        else:
            template, match = _SQLITE_SEARCH, " OR ".join(f'"{word}"' for word in words)
        params = {"match": match, "scope": scope, "before": before, "limit": limit}
        async with self._db.connect() as connection:
            rows = (await connection.execute(text(template), params)).all()
        sign = 1.0 if postgres else -1.0  # bm25: lower is better
        return [(int(position), max(0.0, sign * rank)) for position, rank in rows]

    async def embeddings(self, scope: str, before: int) -> list[tuple[int, bytes]]:
        async with self._db.connect() as connection:
            rows = await connection.execute(
                select(ContextTurnRow.position, ContextTurnRow.embedding).where(
                    ContextTurnRow.scope == scope,
                    ContextTurnRow.position < before,
                    ContextTurnRow.embedding.is_not(None),
                )
            )
            return [(int(position), bytes(vector)) for position, vector in rows.all()]
