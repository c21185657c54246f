"""Search over indexed chunks: full-text ranking per backend, stored embeddings, texts.

- SQLite: the FTS5 table ``fts_chunks`` (porter stemming), ranked by ``bm25``; the
  relevance is ``-bm25``.
- PostgreSQL: ``to_tsvector('english', text)`` (GIN expression index ``fts_chunks_tsv``)
  matched against an OR of the query terms, ranked by ``ts_rank_cd`` (cover density).

Relevances are ≥ 0 and grow with relevance; their scale differs per backend, so callers
compare them only within one result list.

Callers pass plain word terms (``\\w+``); this module builds the backend's query syntax
from them, so no client text reaches a query parser unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, select, text

from portway.store.database import Database
from portway.store.models.files import ChunkRow, FileRow, VectorStoreFileRow

_WORD = re.compile(r"\w+")

_SQLITE_SEARCH = """
SELECT c.id, bm25(fts_chunks) AS rank
FROM fts_chunks JOIN vector_store_chunks AS c ON c.id = fts_chunks.rowid
WHERE fts_chunks MATCH :match AND c.vector_store_id IN :stores {file_filter}
ORDER BY rank LIMIT :limit
"""
_POSTGRES_SEARCH = """
SELECT c.id, ts_rank_cd(to_tsvector('english', c.text), q) AS rank
FROM vector_store_chunks AS c, to_tsquery('english', :match) AS q
WHERE to_tsvector('english', c.text) @@ q AND c.vector_store_id IN :stores {file_filter}
ORDER BY rank DESC, c.id LIMIT :limit
"""
_FILE_FILTER = "AND c.file_id IN :files"


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    chunk_id: int
    score: float


@dataclass(frozen=True, slots=True)
class ChunkText:
    chunk_id: int
    vector_store_id: str
    file_id: str
    filename: str
    text: str
    attributes: dict[str, Any] | None


def _checked_terms(terms: Sequence[str]) -> list[str]:
    words = [term for term in terms if _WORD.fullmatch(term)]
    if len(words) != len(terms):
        raise ValueError("full-text terms must be single words")
    return words


class ChunkRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def full_text(
        self,
        store_ids: Sequence[str],
        terms: Sequence[str],
        limit: int,
        file_ids: Collection[str] | None = None,
    ) -> list[ScoredChunk]:
        """Chunks matching any term, best first, with their raw relevance."""
        words = _checked_terms(terms)
        if not words or not store_ids or (file_ids is not None and not file_ids):
            return []
        postgres = self._database.dialect == "postgresql"
        if postgres:
            template, match = _POSTGRES_SEARCH, " | ".join(words)
        else:
            template, match = _SQLITE_SEARCH, " OR ".join(f'"{word}"' for word in words)
        statement = text(
            template.format(file_filter=_FILE_FILTER if file_ids is not None else "")
        ).bindparams(bindparam("stores", expanding=True))
        params: dict[str, Any] = {"match": match, "stores": list(store_ids), "limit": limit}
        if file_ids is not None:
            statement = statement.bindparams(bindparam("files", expanding=True))
            params["files"] = list(file_ids)
        async with self._database.connect() as connection:
            rows = (await connection.execute(statement, params)).all()
        sign = 1.0 if postgres else -1.0  # bm25: lower is better
        return [ScoredChunk(int(chunk_id), max(0.0, sign * rank)) for chunk_id, rank in rows]

    async def embeddings(
        self, store_ids: Sequence[str], file_ids: Collection[str] | None = None
    ) -> list[tuple[int, bytes]]:
        """(chunk id, float32 embedding bytes) of every embedded chunk in the stores."""
        if not store_ids:
            return []
        query = select(ChunkRow.id, ChunkRow.embedding).where(
            ChunkRow.vector_store_id.in_(list(store_ids)), ChunkRow.embedding.is_not(None)
        )
        if file_ids is not None:
            query = query.where(ChunkRow.file_id.in_(list(file_ids)))
        async with self._database.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [(int(chunk_id), bytes(embedding)) for chunk_id, embedding in rows]

    async def texts(self, chunk_ids: Sequence[int]) -> dict[int, ChunkText]:
        if not chunk_ids:
            return {}
        query = (
            select(
                ChunkRow.id,
                ChunkRow.vector_store_id,
                ChunkRow.file_id,
                FileRow.filename,
                ChunkRow.text,
                VectorStoreFileRow.attributes,
            )
            .join(FileRow, FileRow.id == ChunkRow.file_id)
            .join(
                VectorStoreFileRow,
                and_(
                    VectorStoreFileRow.vector_store_id == ChunkRow.vector_store_id,
                    VectorStoreFileRow.file_id == ChunkRow.file_id,
                ),
            )
            .where(ChunkRow.id.in_(list(chunk_ids)))
        )
        async with self._database.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {
            int(row[0]): ChunkText(int(row[0]), row[1], row[2], row[3], row[4], row[5])
            for row in rows
        }
