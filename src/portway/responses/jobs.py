"""Background responses as a job kind of the run workers (``assistants.workers``).

``RunWorkers[ResponseRow]`` claims, leases, recovers and requeues them (see the contract
there; concurrency, leases and attempts come from the ``assistants`` settings); these
adapters give it the response's execution and how a response comes to rest.

A response has no ``cancelling`` state: ``ResponseService.cancel`` writes ``cancelled``
itself and then asks the workers to stop it (at once here; within a lease renewal
elsewhere, since ``ResponseStore.renew`` leaves out what its worker no longer holds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from portway.assistants.engine import Progress
from portway.responses.service import ResponseService
from portway.store.models.responses import ResponseRow


class ResponseJobEngine:
    """``JobEngine``: execute a claimed background response."""

    def __init__(self, service: ResponseService) -> None:
        self._service = service

    async def execute(self, job: ResponseRow, progress: Progress) -> None:
        await self._service.run_background(job)


class ResponseJobLifecycle:
    """``JobLifecycle``: a response the workers stop fails (``server_error``) or is
    cancelled, only while this worker (``owner``) holds it; none expires."""

    def __init__(
        self, service: ResponseService, owner: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._service = service
        self._owner = owner
        self.clock = clock

    async def fail(
        self,
        job_id: str,
        code: Any,
        message: str,
        *,
        partial_text: str | None = None,
        expected: Sequence[str] = ("in_progress",),
    ) -> ResponseRow | None:
        return await self._service.fail_background(
            job_id, self._owner, message, code=str(code), statuses=expected
        )

    async def cancel(
        self,
        job_id: str,
        partial_text: str | None = None,
        *,
        expected: Sequence[str] = ("in_progress",),
    ) -> ResponseRow | None:
        return await self._service.cancel_background(job_id, self._owner, statuses=expected)

    async def expire(self, job_id: str) -> None:
        return None
