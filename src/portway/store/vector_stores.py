"""Repository of vector stores, their files and file batches, and the chunks indexing writes.

File counts and ``usage_bytes`` are derived from ``vector_store_files`` when read, so they
cannot drift from the rows they count. A vector-store file row is identified for the
indexer by (store, file, created_at): a file re-added while an older indexing job still
runs gets a new ``created_at``, and the older job's result is discarded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portway.records import copy_as
from portway.store.database import Database
from portway.store.models.files import (
    ChunkRow,
    FileBatchRow,
    VectorStoreFileRow,
    VectorStoreRow,
)
from portway.store.pagination import Page, PageRequest, paginate

IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class FileCounts:
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.in_progress + self.completed + self.failed + self.cancelled


@dataclass(frozen=True, slots=True)
class VectorStoreRecord:
    id: str
    tenant: str
    name: str
    created_at: float
    last_active_at: float
    description: str | None = None
    expires_after_days: int | None = None
    metadata: dict[str, str] | None = None
    file_counts: FileCounts = field(default_factory=FileCounts)
    usage_bytes: int = 0


@dataclass(frozen=True, slots=True)
class VectorStoreFileRecord:
    vector_store_id: str
    file_id: str
    tenant: str
    status: str
    created_at: float
    chunk_size_tokens: int
    chunk_overlap_tokens: int
    attributes: dict[str, Any] | None = None
    batch_id: str | None = None
    usage_bytes: int = 0
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class FileBatchRecord:
    id: str
    vector_store_id: str
    tenant: str
    created_at: float
    cancelled_at: float | None = None
    file_counts: FileCounts = field(default_factory=FileCounts)


@dataclass(frozen=True, slots=True)
class NewChunk:
    position: int
    tokens: int
    text: str
    embedding: bytes | None = None


def _store(row: VectorStoreRow) -> VectorStoreRecord:
    return copy_as(VectorStoreRecord, row, metadata=row.store_metadata)


def _file(row: VectorStoreFileRow) -> VectorStoreFileRecord:
    return copy_as(VectorStoreFileRecord, row)


def _file_row(record: VectorStoreFileRecord) -> VectorStoreFileRow:
    return copy_as(VectorStoreFileRow, record)


def _counts(by_status: dict[str, int]) -> FileCounts:
    return FileCounts(
        in_progress=by_status.get(IN_PROGRESS, 0),
        completed=by_status.get(COMPLETED, 0),
        failed=by_status.get(FAILED, 0),
        cancelled=by_status.get(CANCELLED, 0),
    )


class VectorStoreRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    # Stores ----------------------------------------------------------------

    async def create(
        self, store: VectorStoreRecord, files: Sequence[VectorStoreFileRecord] = ()
    ) -> None:
        async with self._database.session() as session:
            session.add(copy_as(VectorStoreRow, store, store_metadata=store.metadata))
            await session.flush()
            session.add_all(_file_row(record) for record in files)

    async def get(self, tenant: str, store_id: str) -> VectorStoreRecord | None:
        async with self._database.session() as session:
            row = await self._owned_store(session, tenant, store_id)
            if row is None:
                return None
            return (await self._with_counts(session, [_store(row)]))[0]

    async def list(self, tenant: str, page: PageRequest) -> Page[VectorStoreRecord]:
        query = select(VectorStoreRow).where(VectorStoreRow.tenant == tenant)
        order = (VectorStoreRow.created_at, VectorStoreRow.id)
        async with self._database.session() as session:
            rows = await paginate(session, query, page, order_by=order, cursor=VectorStoreRow.id)
            stores = await self._with_counts(session, [_store(row) for row in rows.items])
        return Page(stores, rows.has_more)

    async def save(self, store: VectorStoreRecord) -> None:
        """Write the mutable fields (name, expiry, metadata, last activity)."""
        async with self._database.session() as session:
            await session.execute(
                update(VectorStoreRow)
                .where(VectorStoreRow.id == store.id, VectorStoreRow.tenant == store.tenant)
                .values(
                    name=store.name,
                    expires_after_days=store.expires_after_days,
                    store_metadata=store.metadata,
                    last_active_at=store.last_active_at,
                )
            )

    async def touch(self, store_ids: Iterable[str], now: float) -> None:
        async with self._database.session() as session:
            await session.execute(
                update(VectorStoreRow)
                .where(VectorStoreRow.id.in_(list(store_ids)))
                .values(last_active_at=now)
            )

    async def delete(self, tenant: str, store_id: str) -> bool:
        async with self._database.session() as session:
            if await self._owned_store(session, tenant, store_id) is None:
                return False
            await session.execute(delete(ChunkRow).where(ChunkRow.vector_store_id == store_id))
            await session.execute(
                delete(VectorStoreFileRow).where(VectorStoreFileRow.vector_store_id == store_id)
            )
            await session.execute(
                delete(FileBatchRow).where(FileBatchRow.vector_store_id == store_id)
            )
            await session.execute(delete(VectorStoreRow).where(VectorStoreRow.id == store_id))
        return True

    async def owned_ids(self, tenant: str, store_ids: Iterable[str]) -> list[str]:
        """The given store ids that exist and belong to ``tenant``, in the given order."""
        wanted = list(dict.fromkeys(store_ids))
        if not wanted:
            return []
        query = select(VectorStoreRow.id).where(
            VectorStoreRow.id.in_(wanted), VectorStoreRow.tenant == tenant
        )
        async with self._database.session() as session:
            found = set((await session.execute(query)).scalars().all())
        return [store_id for store_id in wanted if store_id in found]

    # Files of a store ------------------------------------------------------

    async def add_files(self, files: Sequence[VectorStoreFileRecord]) -> None:
        """Attach files (re-attaching replaces the old row and its chunks)."""
        async with self._database.session() as session:
            await self._replace_files(session, files)

    async def get_file(
        self, tenant: str, store_id: str, file_id: str
    ) -> VectorStoreFileRecord | None:
        query = select(VectorStoreFileRow).where(
            VectorStoreFileRow.vector_store_id == store_id,
            VectorStoreFileRow.file_id == file_id,
            VectorStoreFileRow.tenant == tenant,
        )
        async with self._database.session() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        return _file(row) if row is not None else None

    async def list_files(
        self,
        tenant: str,
        store_id: str,
        page: PageRequest,
        status: str | None = None,
        batch_id: str | None = None,
    ) -> Page[VectorStoreFileRecord]:
        query = select(VectorStoreFileRow).where(
            VectorStoreFileRow.vector_store_id == store_id, VectorStoreFileRow.tenant == tenant
        )
        if status is not None:
            query = query.where(VectorStoreFileRow.status == status)
        if batch_id is not None:
            query = query.where(VectorStoreFileRow.batch_id == batch_id)
        order = (VectorStoreFileRow.created_at, VectorStoreFileRow.file_id)
        async with self._database.session() as session:
            rows = await paginate(
                session, query, page, order_by=order, cursor=VectorStoreFileRow.file_id
            )
        return Page([_file(row) for row in rows.items], rows.has_more)

    async def file_attributes(self, store_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``file_id -> attributes`` of the completed files in these stores (for filters)."""
        query = select(VectorStoreFileRow.file_id, VectorStoreFileRow.attributes).where(
            VectorStoreFileRow.vector_store_id.in_(list(store_ids)),
            VectorStoreFileRow.status == COMPLETED,
        )
        async with self._database.session() as session:
            rows = (await session.execute(query)).all()
        merged: dict[str, dict[str, Any]] = {}
        for file_id, attributes in rows:
            merged.setdefault(file_id, {}).update(attributes or {})
        return merged

    async def set_attributes(
        self, tenant: str, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> VectorStoreFileRecord | None:
        async with self._database.session() as session:
            await session.execute(
                update(VectorStoreFileRow)
                .where(
                    VectorStoreFileRow.vector_store_id == store_id,
                    VectorStoreFileRow.file_id == file_id,
                    VectorStoreFileRow.tenant == tenant,
                )
                .values(attributes=attributes)
            )
        return await self.get_file(tenant, store_id, file_id)

    async def delete_file(self, tenant: str, store_id: str, file_id: str) -> bool:
        async with self._database.session() as session:
            result = await session.execute(
                delete(VectorStoreFileRow).where(
                    VectorStoreFileRow.vector_store_id == store_id,
                    VectorStoreFileRow.file_id == file_id,
                    VectorStoreFileRow.tenant == tenant,
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            await session.execute(
                delete(ChunkRow).where(
                    ChunkRow.vector_store_id == store_id, ChunkRow.file_id == file_id
                )
            )
        return True

    # Indexing --------------------------------------------------------------

    async def pending_files(self) -> list[VectorStoreFileRecord]:
        """Files still ``in_progress`` (e.g. interrupted by a restart), oldest first."""
        query = (
            select(VectorStoreFileRow)
            .where(VectorStoreFileRow.status == IN_PROGRESS)
            .order_by(VectorStoreFileRow.created_at)
        )
        async with self._database.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_file(row) for row in rows]

    async def count_pending(self, tenant: str, store_ids: Sequence[str]) -> int:
        """Files of these stores (of ``tenant``) still being indexed."""
        query = select(func.count()).where(
            VectorStoreFileRow.vector_store_id.in_(list(store_ids)),
            VectorStoreFileRow.tenant == tenant,
            VectorStoreFileRow.status == IN_PROGRESS,
        )
        async with self._database.session() as session:
            return int((await session.execute(query)).scalar_one())

    async def is_pending(self, job: VectorStoreFileRecord) -> bool:
        query = select(VectorStoreFileRow.file_id).where(*self._job_filter(job))
        async with self._database.session() as session:
            return (await session.execute(query)).first() is not None

    async def complete_file(
        self, job: VectorStoreFileRecord, chunks: Sequence[NewChunk], usage_bytes: int
    ) -> bool:
        """Store the chunks and mark the file completed; False if the job is stale."""
        async with self._database.session() as session:
            result = await session.execute(
                update(VectorStoreFileRow)
                .where(*self._job_filter(job))
                .values(status=COMPLETED, usage_bytes=usage_bytes)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            await session.execute(
                delete(ChunkRow).where(
                    ChunkRow.vector_store_id == job.vector_store_id,
                    ChunkRow.file_id == job.file_id,
                )
            )
            if chunks:
                await session.execute(
                    insert(ChunkRow),
                    [
                        {
                            "vector_store_id": job.vector_store_id,
                            "file_id": job.file_id,
                            "position": chunk.position,
                            "tokens": chunk.tokens,
                            "text": chunk.text,
                            "embedding": chunk.embedding,
                        }
                        for chunk in chunks
                    ],
                )
        return True

    async def fail_file(self, job: VectorStoreFileRecord, code: str, message: str) -> bool:
        async with self._database.session() as session:
            result = await session.execute(
                update(VectorStoreFileRow)
                .where(*self._job_filter(job))
                .values(status=FAILED, error_code=code, error_message=message[:2000])
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def _job_filter(job: VectorStoreFileRecord) -> tuple[Any, ...]:
        return (
            VectorStoreFileRow.vector_store_id == job.vector_store_id,
            VectorStoreFileRow.file_id == job.file_id,
            VectorStoreFileRow.created_at == job.created_at,
            VectorStoreFileRow.status == IN_PROGRESS,
        )

    # Batches ---------------------------------------------------------------

    async def create_batch(
        self, batch: FileBatchRecord, files: Sequence[VectorStoreFileRecord]
    ) -> None:
        async with self._database.session() as session:
            session.add(copy_as(FileBatchRow, batch))
            await self._replace_files(session, files)

    async def get_batch(self, tenant: str, store_id: str, batch_id: str) -> FileBatchRecord | None:
        query = select(FileBatchRow).where(
            FileBatchRow.id == batch_id,
            FileBatchRow.vector_store_id == store_id,
            FileBatchRow.tenant == tenant,
        )
        async with self._database.session() as session:
            row = (await session.execute(query)).scalar_one_or_none()
            if row is None:
                return None
            counts = await session.execute(
                select(VectorStoreFileRow.status, func.count())
                .where(VectorStoreFileRow.batch_id == batch_id)
                .group_by(VectorStoreFileRow.status)
            )
            by_status = {status: count for status, count in counts.all()}
        return copy_as(FileBatchRecord, row, file_counts=_counts(by_status))

    async def cancel_batch(
        self, tenant: str, store_id: str, batch_id: str, now: float
    ) -> list[str]:
        """Mark the batch cancelled and its unfinished files too; returns those file ids."""
        async with self._database.session() as session:
            await session.execute(
                update(FileBatchRow)
                .where(
                    FileBatchRow.id == batch_id,
                    FileBatchRow.vector_store_id == store_id,
                    FileBatchRow.tenant == tenant,
                    FileBatchRow.cancelled_at.is_(None),
                )
                .values(cancelled_at=now)
            )
            pending = await session.execute(
                select(VectorStoreFileRow.file_id).where(
                    VectorStoreFileRow.batch_id == batch_id,
                    VectorStoreFileRow.status == IN_PROGRESS,
                )
            )
            file_ids = list(pending.scalars().all())
            await session.execute(
                update(VectorStoreFileRow)
                .where(
                    VectorStoreFileRow.batch_id == batch_id,
                    VectorStoreFileRow.status == IN_PROGRESS,
                )
                .values(status=CANCELLED)
            )
        return file_ids

    # Helpers ---------------------------------------------------------------

    @staticmethod
    async def _replace_files(session: AsyncSession, files: Sequence[VectorStoreFileRecord]) -> None:
        if not files:
            return
        store_id = files[0].vector_store_id
        file_ids = [record.file_id for record in files]
        await session.execute(
            delete(ChunkRow).where(
                ChunkRow.vector_store_id == store_id, ChunkRow.file_id.in_(file_ids)
            )
        )
        await session.execute(
            delete(VectorStoreFileRow).where(
                VectorStoreFileRow.vector_store_id == store_id,
                VectorStoreFileRow.file_id.in_(file_ids),
            )
        )
        await session.flush()
        session.add_all(_file_row(record) for record in files)

    @staticmethod
    async def _owned_store(
        session: AsyncSession, tenant: str, store_id: str
    ) -> VectorStoreRow | None:
        query = select(VectorStoreRow).where(
            VectorStoreRow.id == store_id, VectorStoreRow.tenant == tenant
        )
        return (await session.execute(query)).scalar_one_or_none()

    @staticmethod
    async def _with_counts(
        session: AsyncSession, stores: list[VectorStoreRecord]
    ) -> list[VectorStoreRecord]:
        if not stores:
            return stores
        query = (
            select(
                VectorStoreFileRow.vector_store_id,
                VectorStoreFileRow.status,
                func.count(),
                func.coalesce(func.sum(VectorStoreFileRow.usage_bytes), 0),
            )
            .where(VectorStoreFileRow.vector_store_id.in_([store.id for store in stores]))
            .group_by(VectorStoreFileRow.vector_store_id, VectorStoreFileRow.status)
        )
        statuses: dict[str, dict[str, int]] = {}
        usage: dict[str, int] = {}
        for store_id, status, count, usage_bytes in (await session.execute(query)).all():
            statuses.setdefault(store_id, {})[status] = count
            usage[store_id] = usage.get(store_id, 0) + int(usage_bytes)
        return [
            replace(
                store,
                file_counts=_counts(statuses.get(store.id, {})),
                usage_bytes=usage.get(store.id, 0),
            )
            for store in stores
        ]
