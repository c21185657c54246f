"""Vector store records → the OpenAI objects of ``/v1/vector_stores`` (fields in the
spec's order, timestamps as whole seconds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portway.records import OMIT, copy_as
from portway.retrieval.search import SearchHit
from portway.store.vector_stores import (
    CANCELLED,
    FAILED,
    IN_PROGRESS,
    FileBatchRecord,
    FileCounts,
    VectorStoreFileRecord,
    VectorStoreRecord,
)
from portway.vector_stores.wire import (
    FileBatchDict,
    FileCountsDict,
    SearchResultDict,
    SearchResultsPageDict,
    VectorStoreDict,
    VectorStoreFileDict,
)

DAY = 86_400.0


def _counts(counts: FileCounts) -> FileCountsDict:
    return copy_as(FileCountsDict, counts, total=counts.total)


def _expires_at(store: VectorStoreRecord) -> float | None:
    if store.expires_after_days is None:
        return None
    return store.last_active_at + store.expires_after_days * DAY


def store_object(store: VectorStoreRecord, now: float) -> VectorStoreDict:
    expires_at = _expires_at(store)
    status: Any = "in_progress" if store.file_counts.in_progress else "completed"
    if expires_at is not None and now >= expires_at:
        status = "expired"
    days = store.expires_after_days
    return copy_as(
        VectorStoreDict,
        store,
        object="vector_store",
        created_at=int(store.created_at),
        file_counts=_counts(store.file_counts),
        status=status,
        expires_at=int(expires_at) if expires_at is not None else None,
        last_active_at=int(store.last_active_at),
        metadata=store.metadata or {},
        # an object when set, absent otherwise
        expires_after=OMIT if days is None else {"anchor": "last_active_at", "days": days},
    )


def store_file_object(record: VectorStoreFileRecord) -> VectorStoreFileDict:
    last_error: Any = None
    if record.status == FAILED:
        last_error = {
            "code": record.error_code or "server_error",
            "message": record.error_message or "",
        }
    return copy_as(
        VectorStoreFileDict,
        record,
        id=record.file_id,
        object="vector_store.file",
        created_at=int(record.created_at),
        last_error=last_error,
        chunking_strategy={
            "type": "static",
            "static": {
                "max_chunk_size_tokens": record.chunk_size_tokens,
                "chunk_overlap_tokens": record.chunk_overlap_tokens,
            },
        },
        attributes=record.attributes or {},
    )


def batch_object(batch: FileBatchRecord) -> FileBatchDict:
    counts = batch.file_counts
    status: Any = "completed"
    if batch.cancelled_at is not None:
        status = CANCELLED
    elif counts.in_progress:
        status = IN_PROGRESS
    elif counts.total and counts.failed == counts.total:
        status = FAILED
    return copy_as(
        FileBatchDict,
        batch,
        object="vector_store.files_batch",
        created_at=int(batch.created_at),
        status=status,
        file_counts=_counts(counts),
    )


def search_page(queries: list[str], hits: Sequence[SearchHit]) -> SearchResultsPageDict:
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [
            copy_as(
                SearchResultDict,
                hit.chunk,
                score=round(hit.score, 6),
                attributes=hit.chunk.attributes or {},
                content=[{"type": "text", "text": hit.chunk.text}],
            )
            for hit in hits
        ],
        "has_more": False,
        "next_page": None,
    }
