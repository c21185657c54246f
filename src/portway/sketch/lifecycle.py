"""How a sketch's operation comes to rest when it cannot complete.

A sketch that never had a version fails (``failed``, with the error). A sketch that has
one keeps it: a failed revision returns it to ``completed`` with ``error`` saying what
went wrong, so one bad revision never loses the diagram.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from portway.store.models.sketches import SketchRow
from portway.store.sketches import SketchStore


class SketchLifecycle:
    def __init__(self, store: SketchStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.clock = clock

    async def fail(
        self,
        job_id: str,
        code: Any,
        message: str,
        *,
        partial_text: str | None = None,
        expected: Sequence[str] = ("in_progress",),
    ) -> SketchRow | None:
        current = await self._store.get_by_id(job_id)
        if current is None or current.status not in expected:
            return None
        status = "completed" if current.version > 0 else "failed"
        return await self._store.transition(
            job_id,
            expected,
            {
                "status": status,
                "stage": None,
                "pending": None,
                "error": {"code": str(code), "message": message},
                "owner": None,
                "lease_until": None,
                "updated_at": self.clock(),
            },
        )

    async def cancel(
        self,
        job_id: str,
        partial_text: str | None = None,
        *,
        expected: Sequence[str] = ("in_progress",),
    ) -> SketchRow | None:
        """Sketches are not cancelled, only deleted; a stop the workers ask for fails it."""
        return await self.fail(job_id, "cancelled", "The operation was stopped.", expected=expected)

    async def expire(self, job_id: str) -> SketchRow | None:
        return None
