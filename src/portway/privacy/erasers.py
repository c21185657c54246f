"""How each kind of stored content is deleted, children and bytes included.

An eraser deletes one object of its kind by tenant and id and says whether it existed.
Other stores of content (a request log with bodies, ...) plug in as ``UserContentStore``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from portway.errors import NotFoundError
from portway.retention import Retention
from portway.retrieval.files import FileService
from portway.store.assistants import AssistantStore
from portway.store.batches import BatchStore
from portway.store.database import Database
from portway.store.responses import ResponseStore
from portway.store.sketches import SketchStore
from portway.store.vector_stores import VectorStoreRepository

Eraser = Callable[[str, str], Awaitable[bool]]
# The retention that applies to content stored for (key id, team id) now.
RetentionLookup = Callable[[str | None, str | None], Awaitable[Retention]]


class UserContentStore(Protocol):
    """Content kept outside ``content_owners`` (e.g. request bodies in a request log)."""

    name: str

    async def erase_user(self, user: str) -> int:
        """Delete everything stored for end user ``user``; how many rows went."""
        ...

    async def purge_expired(self, now: float, retention_of: RetentionLookup) -> int:
        """Delete content past its owner's retention; how many rows went."""
        ...


def _file_eraser(files: FileService) -> Eraser:
    async def erase(tenant: str, file_id: str) -> bool:
        try:
            await files.delete(tenant, file_id)  # the row, its chunks and its bytes
        except NotFoundError:
            return False
        return True

    return erase


def _batch_eraser(batches: BatchStore, files: FileService) -> Eraser:
    async def erase(tenant: str, batch_id: str) -> bool:
        row = await batches.delete_finished(tenant, batch_id)
        if row is None:
            return False  # missing, or still running: the next purge tries again
        for file_id in (row.output_file_id, row.error_file_id):
            if file_id is not None:
                await _file_eraser(files)(tenant, file_id)
        return True

    return erase


def build_erasers(database: Database, files: FileService) -> Mapping[str, Eraser]:
    responses = ResponseStore(database)
    return {
        "response": responses.delete_response,
        "conversation": responses.delete_conversation,
        "thread": AssistantStore(database).delete_thread,
        "file": _file_eraser(files),
        "vector_store": VectorStoreRepository(database).delete,
        "batch": _batch_eraser(BatchStore(database), files),
        "sketch": SketchStore(database).delete,
    }
