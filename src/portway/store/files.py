"""Repository of uploaded files' metadata (the bytes live in ``retrieval.storage``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, or_, select

from portway.store.database import Database
from portway.store.models.files import ChunkRow, FileRow, VectorStoreFileRow
from portway.store.pagination import Page, PageRequest, paginate


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    tenant: str
    filename: str
    purpose: str
    bytes: int
    created_at: float
    expires_at: float | None = None


def _record(row: FileRow) -> FileRecord:
    return FileRecord(
        id=row.id,
        tenant=row.tenant,
        filename=row.filename,
        purpose=row.purpose,
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _live(now: float) -> ColumnElement[bool]:
    return or_(FileRow.expires_at.is_(None), FileRow.expires_at > now)


class FileRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, record: FileRecord) -> None:
        async with self._database.session() as session:
            session.add(
                FileRow(
                    id=record.id,
                    tenant=record.tenant,
                    filename=record.filename,
                    purpose=record.purpose,
                    bytes=record.bytes,
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                )
            )

    async def get(self, tenant: str, file_id: str, now: float) -> FileRecord | None:
        query = select(FileRow).where(FileRow.id == file_id, FileRow.tenant == tenant, _live(now))
        async with self._database.session() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        return _record(row) if row is not None else None

    async def get_many(self, tenant: str, file_ids: list[str], now: float) -> dict[str, FileRecord]:
        if not file_ids:
            return {}
        query = select(FileRow).where(
            FileRow.id.in_(set(file_ids)), FileRow.tenant == tenant, _live(now)
        )
        async with self._database.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return {row.id: _record(row) for row in rows}

    async def list(
        self, tenant: str, page: PageRequest, now: float, purpose: str | None = None
    ) -> Page[FileRecord]:
        query = select(FileRow).where(FileRow.tenant == tenant, _live(now))
        if purpose is not None:
            query = query.where(FileRow.purpose == purpose)
        async with self._database.session() as session:
            rows = await paginate(
                session, query, page, order_by=(FileRow.created_at, FileRow.id), cursor=FileRow.id
            )
        return Page([_record(row) for row in rows.items], rows.has_more)

    async def delete(self, tenant: str, file_id: str) -> bool:
        """Delete the file and its presence in every vector store (chunks included)."""
        async with self._database.session() as session:
            owned = await session.execute(
                select(FileRow.id).where(FileRow.id == file_id, FileRow.tenant == tenant)
            )
            if owned.scalar_one_or_none() is None:
                return False
            await session.execute(delete(ChunkRow).where(ChunkRow.file_id == file_id))
            await session.execute(
                delete(VectorStoreFileRow).where(VectorStoreFileRow.file_id == file_id)
            )
            await session.execute(delete(FileRow).where(FileRow.id == file_id))
        return True

    async def tenant_bytes(self, tenant: str, now: float) -> int:
        """What the tenant's live files hold, in bytes."""
        query = select(func.coalesce(func.sum(FileRow.bytes), 0)).where(
            FileRow.tenant == tenant, _live(now)
        )
        async with self._database.session() as session:
            return int((await session.execute(query)).scalar_one())

    async def expired(self, now: float, limit: int = 500) -> list[FileRecord]:
        query = (
            select(FileRow)
            .where(FileRow.expires_at.is_not(None), FileRow.expires_at <= now)
            .limit(limit)
        )
        async with self._database.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_record(row) for row in rows]
