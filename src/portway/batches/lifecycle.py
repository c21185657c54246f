"""How a batch comes to rest: its output and error files are written from the lines'
results, then the batch takes its final status in one guarded update.

Every ending writes the files of what finished (a cancelled, expired or failed batch
keeps the results of the lines it executed, as OpenAI does). Files are Portway files of
the batch's tenant with purpose ``batch_output``; if the guarded update finds the batch
already at rest (another worker got there first), the files just written are deleted.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import orjson

from portway.protocol.batches import BatchErrorDict
from portway.protocol.files import BATCH_OUTPUT
from portway.retrieval.files import FileService
from portway.retrieval.storage import StorageQuotaExceededError
from portway.store.batches import EXECUTING, BatchStore
from portway.store.models.batches import BatchRow

logger = logging.getLogger(__name__)

# Output files stay in memory up to this size, then spill to a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024
_STAMPS = {
    "completed": "completed_at",
    "failed": "failed_at",
    "expired": "expired_at",
    "cancelled": "cancelled_at",
}


def _executing(expected: Sequence[str]) -> tuple[str, ...]:
    """The workers name a job they execute ``in_progress``; a batch has three such statuses."""
    return tuple({*expected, *EXECUTING}) if "in_progress" in expected else tuple(expected)


class BatchLifecycle:
    def __init__(
        self, store: BatchStore, files: FileService, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._files = files
        self.clock = clock

    async def complete(self, batch_id: str) -> BatchRow | None:
        return await self._finish(batch_id, "completed", ("finalizing",))

    async def cancel(
        self,
        job_id: str,
        partial_text: str | None = None,
        *,
        expected: Sequence[str] = ("cancelling",),
    ) -> BatchRow | None:
        return await self._finish(job_id, "cancelled", expected)

    async def fail(
        self,
        job_id: str,
        code: Any,
        message: str,
        *,
        partial_text: str | None = None,
        expected: Sequence[str] = EXECUTING,
        errors: Sequence[BatchErrorDict] = (),
    ) -> BatchRow | None:
        found = list(errors) or [
            {"code": str(code), "message": message, "param": None, "line": None}
        ]
        return await self._finish(job_id, "failed", _executing(expected), errors=found)

    async def expire(self, job_id: str) -> BatchRow | None:
        return await self._finish(job_id, "expired", EXECUTING)

    async def _finish(
        self,
        batch_id: str,
        status: str,
        expected: Sequence[str],
        *,
        errors: Sequence[BatchErrorDict] = (),
    ) -> BatchRow | None:
        batch = await self._store.get_by_id(batch_id)
        if batch is None or batch.status not in expected:
            return None
        try:
            written = await self._write_files(batch)
        except StorageQuotaExceededError as error:
            # The results cannot be kept: the batch fails, saying why.
            written, status = {}, "failed"
            errors = [
                {
                    "code": "storage_quota_exceeded",
                    "message": error.message,
                    "param": None,
                    "line": None,
                }
            ]
        changes: dict[str, Any] = {
            "status": status,
            _STAMPS[status]: self.clock(),
            "output_file_id": written.get("output"),
            "error_file_id": written.get("error"),
            "owner": None,
            "lease_until": None,
        }
        if errors:
            changes["errors"] = list(errors)
        finished = await self._store.transition(batch_id, expected, changes)
        if finished is None:
            for file_id in written.values():
                await self._files.delete(batch.tenant, file_id)
        return finished

    async def _write_files(self, batch: BatchRow) -> dict[str, str]:
        """The output (successes) and error (failures) files; a kind with no line gets none."""
        with (
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as output,
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as errors,
        ):
            after = -1
            while rows := await self._store.results(batch.id, after=after):
                for row in rows:
                    (output if row.ok else errors).write(orjson.dumps(row.result) + b"\n")
                after = rows[-1].line
            written: dict[str, str] = {}
            for kind, spool in (("output", output), ("error", errors)):
                if spool.tell():
                    written[kind] = await self._upload(batch, kind, spool)
            return written

    async def _upload(self, batch: BatchRow, kind: str, spool: IO[bytes]) -> str:
        spool.seek(0)
        record = await self._files.upload(
            batch.tenant,
            f"{batch.id}_{kind}.jsonl",
            BATCH_OUTPUT,
            spool,
            batch.output_expires_after,
        )
        return record.id
