"""`/v1/batches` behind HTTP: create, retrieve, list and cancel, scoped to the tenant.

Create checks what can be checked at once (a 400 for an endpoint without a handler, a
completion window other than ``24h``, an input file that is not the tenant's or not of
purpose ``batch``); the file's lines are checked by the worker that claims the batch
(``validating``), as OpenAI does. Cancel moves an executing batch to ``cancelling``; its
holder stops it (at once in this process, within a lease renewal in another), and a
batch nobody holds is cancelled on the spot.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping

from portway.assistants.principals import principal_snapshot
from portway.assistants.workers import RunWorkers
from portway.batches.endpoints import LineHandler, supported
from portway.batches.lifecycle import BatchLifecycle
from portway.batches.render import batch_object
from portway.errors import InvalidRequestError, NotFoundError
from portway.protocol.batches import COMPLETION_WINDOWS, BatchDict, CreateBatchRequest
from portway.protocol.files import BATCH_INPUT
from portway.protocol.lists import ListObject, list_object
from portway.retrieval.files import FileService
from portway.security.principal import Principal
from portway.store.batches import BatchStore
from portway.store.models.batches import BatchRow
from portway.store.pagination import PageRequest


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


def batch_not_found(batch_id: str) -> NotFoundError:
    return NotFoundError(f"No batch found with id '{batch_id}'.", param="batch_id")


class BatchService:
    def __init__(
        self,
        *,
        store: BatchStore,
        lifecycle: BatchLifecycle,
        files: FileService,
        handlers: Mapping[str, LineHandler],
        workers: RunWorkers[BatchRow],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._files = files
        self._handlers = handlers
        self._workers = workers
        self._clock = clock

    async def create(self, principal: Principal, request: CreateBatchRequest) -> BatchDict:
        if request.endpoint not in self._handlers:
            raise InvalidRequestError(
                f"Invalid value for 'endpoint': '{request.endpoint}'. Supported values are: "
                f"{supported(self._handlers)}.",
                param="endpoint",
                code="invalid_value",
            )
        window = COMPLETION_WINDOWS.get(request.completion_window)
        if window is None:
            raise InvalidRequestError(
                f"Invalid value for 'completion_window': '{request.completion_window}'. "
                "Supported values are: '24h'.",
                param="completion_window",
                code="invalid_value",
            )
        try:
            record = await self._files.get(principal.tenant, request.input_file_id)
        except NotFoundError:
            raise NotFoundError(
                f"No such File object: {request.input_file_id}", param="input_file_id"
            ) from None
        if record.purpose != BATCH_INPUT:
            raise InvalidRequestError(
                f"The input file {record.id} has purpose '{record.purpose}'; a batch's input "
                "file must be uploaded with purpose 'batch'.",
                param="input_file_id",
                code="invalid_value",
            )
        now = self._clock()
        expiry = request.output_expires_after
        row = BatchRow(
            id=new_batch_id(),
            tenant=principal.tenant,
            endpoint=request.endpoint,
            input_file_id=record.id,
            completion_window=request.completion_window,
            status="validating",
            created_at=now,
            expires_at=now + window,
            total=0,
            completed=0,
            failed=0,
            input_tokens=0,
            cached_tokens=0,
            output_tokens=0,
            reasoning_tokens=0,
            meta=dict(request.metadata or {}),
            output_expires_after=expiry.seconds if expiry is not None else None,
            principal=principal_snapshot(principal),
            attempts=0,
        )
        await self._store.create(row)
        self._workers.wake()
        return batch_object(row)

    async def get(self, tenant: str, batch_id: str) -> BatchDict:
        return batch_object(await self._row(tenant, batch_id))

    async def list(self, tenant: str, page: PageRequest) -> ListObject:
        found = await self._store.list(tenant, page)
        return list_object([batch_object(row) for row in found.items], found.has_more)

    async def cancel(self, tenant: str, batch_id: str) -> BatchDict:
        batch = await self._row(tenant, batch_id)
        if batch.status in ("cancelling", "cancelled"):
            return batch_object(batch)
        cancelling = await self._store.transition(
            batch_id,
            ("validating", "in_progress"),
            {"status": "cancelling", "cancelling_at": self._clock()},
        )
        if cancelling is None:
            current = await self._row(tenant, batch_id)
            if current.status in ("cancelling", "cancelled"):
                return batch_object(current)
            raise InvalidRequestError(
                f"Cannot cancel a batch with status '{current.status}'.",
                param="batch_id",
                code="invalid_state",
            )
        if cancelling.owner is None:
            # Nobody executes it: it comes to rest now.
            cancelled = await self._lifecycle.cancel(batch_id)
            return batch_object(cancelled or await self._row(tenant, batch_id))
        self._workers.request_cancel(batch_id)  # False: its holder sees it at its renewal
        return batch_object(cancelling)

    async def _row(self, tenant: str, batch_id: str) -> BatchRow:
        row = await self._store.get(tenant, batch_id)
        if row is None:
            raise batch_not_found(batch_id)
        return row
