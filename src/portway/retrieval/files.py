"""Files: bytes on disk (``FileStorage``), metadata in the DB (``FileRepository``).

Every call takes the caller's tenant; a file of another tenant is "not found". The
client's filename is metadata only (sanitised, never used as a path). Expired files
(``expires_after``, and every ``assistants_output`` file after
``files.generated_file_ttl_seconds``) disappear from reads at once and are deleted by
``sweep``, which runs every ``files.sweep_interval_seconds``. A tenant's live files hold
at most ``files.tenant_quota_bytes``: a file that would pass it is refused (413
``storage_quota_exceeded``) and nothing of it is kept. Registrations are serialised in
this process, so concurrent uploads cannot pass the quota together here; processes
sharing a database may each admit one file past it at the same moment.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.exc import SQLAlchemyError

from portway.config import FilesConfig
from portway.errors import NotFoundError
from portway.protocol.files import ASSISTANTS_OUTPUT, FileDeletedDict, FileObjectDict
from portway.protocol.lists import ListObject, list_object
from portway.retrieval.storage import FileStorage, StorageQuotaExceededError
from portway.store.files import FileRecord, FileRepository
from portway.store.pagination import PageRequest

logger = logging.getLogger(__name__)

MAX_FILENAME = 255


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


def clean_filename(name: str | None) -> str:
    """The last path component, without control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if base in ("", ".", ".."):
        return "file"
    return base[:MAX_FILENAME]


def file_object(record: FileRecord) -> FileObjectDict:
    rendered: FileObjectDict = {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": int(record.created_at),
        "filename": record.filename,
        "purpose": record.purpose,
        "status": "processed",
    }
    if record.expires_at is not None:  # the spec's expires_at is an integer, not nullable
        rendered["expires_at"] = int(record.expires_at)
    return rendered


def file_not_found(file_id: str) -> NotFoundError:
    return NotFoundError(f"No such File object: {file_id}", param="file_id")


class FileService:
    def __init__(
        self,
        repository: FileRepository,
        storage: FileStorage,
        config: FilesConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.storage = storage
        self._config = config or FilesConfig()
        self._clock = clock
        self._registering = asyncio.Lock()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.storage.prepare)
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="files-sweeper")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.sweep_interval_seconds)
            try:
                await self.sweep()
            except (OSError, SQLAlchemyError):
                logger.exception("sweeping expired files failed; retrying next interval")

    async def upload(
        self,
        tenant: str,
        filename: str | None,
        purpose: str,
        source: BinaryIO,
        expires_after_seconds: int | None = None,
    ) -> FileRecord:
        """Store an upload; over ``files.max_bytes`` or the tenant's quota → 413, nothing kept."""
        await self._check_quota(tenant, 0)  # a tenant already at its quota: refuse at once
        file_id = new_file_id()
        size = await asyncio.to_thread(self.storage.write, file_id, source)
        if expires_after_seconds is None and purpose == ASSISTANTS_OUTPUT:
            expires_after_seconds = self._config.generated_file_ttl_seconds
        return await self._register(tenant, file_id, filename, purpose, size, expires_after_seconds)

    async def create_from_path(
        self, tenant: str, filename: str, purpose: str, path: Path
    ) -> FileRecord:
        """Store a local file (a code_interpreter output) as a Portway file."""
        file_id = new_file_id()
        size = await asyncio.to_thread(self.storage.copy_in, file_id, path)
        expires = self._config.generated_file_ttl_seconds if purpose == ASSISTANTS_OUTPUT else None
        return await self._register(tenant, file_id, filename, purpose, size, expires)

    async def _register(
        self,
        tenant: str,
        file_id: str,
        filename: str | None,
        purpose: str,
        size: int,
        expires_after_seconds: int | None,
    ) -> FileRecord:
        now = self._clock()
        record = FileRecord(
            id=file_id,
            tenant=tenant,
            filename=clean_filename(filename),
            purpose=purpose,
            bytes=size,
            created_at=now,
            expires_at=now + expires_after_seconds if expires_after_seconds else None,
        )
        try:
            async with self._registering:
                await self._check_quota(tenant, size)
                await self.repository.insert(record)
        except BaseException:
            await asyncio.to_thread(self.storage.delete, file_id)
            raise
        return record

    async def _check_quota(self, tenant: str, adding: int) -> None:
        quota = self._config.tenant_quota_bytes
        if quota is None:
            return
        used = await self.repository.tenant_bytes(tenant, self._clock())
        if used + adding > quota or used >= quota:
            raise StorageQuotaExceededError(
                f"Storing this file would exceed your storage quota of {quota} bytes "
                f"({used} bytes in use). Delete files you no longer need and try again.",
                param="file",
            )

    async def get(self, tenant: str, file_id: str) -> FileRecord:
        record = await self.repository.get(tenant, file_id, self._clock())
        if record is None:
            raise file_not_found(file_id)
        return record

    async def get_many(self, tenant: str, file_ids: list[str]) -> dict[str, FileRecord]:
        return await self.repository.get_many(tenant, file_ids, self._clock())

    async def list(self, tenant: str, page: PageRequest, purpose: str | None) -> ListObject:
        found = await self.repository.list(tenant, page, self._clock(), purpose)
        return list_object([file_object(record) for record in found.items], found.has_more)

    async def delete(self, tenant: str, file_id: str) -> FileDeletedDict:
        if not await self.repository.delete(tenant, file_id):
            raise file_not_found(file_id)
        await asyncio.to_thread(self.storage.delete, file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    async def content_path(self, tenant: str, file_id: str) -> tuple[FileRecord, Path]:
        record = await self.get(tenant, file_id)
        return record, self.storage.path(file_id)

    async def read(self, record: FileRecord) -> bytes:
        return await asyncio.to_thread(self.storage.read, record.id)

    async def sweep(self) -> int:
        """Delete expired files (rows and bytes); returns how many."""
        expired = await self.repository.expired(self._clock())
        for record in expired:
            if await self.repository.delete(record.tenant, record.id):
                await asyncio.to_thread(self.storage.delete, record.id)
        if expired:
            logger.info("deleted %d expired files", len(expired))
        return len(expired)
