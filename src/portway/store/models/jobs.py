"""The columns a worker's lease keeps on a background job's row (runs, batches, sketches,
background responses), declared once for every job table.

``owner`` is the worker holding the job (null while it waits), ``lease_until`` when that
hold lapses, ``attempts`` how often a worker started it. The job tables declare their
own ``seq``, ``id`` and ``status`` (their lengths differ); ``store.jobs.JobQueue`` reads
them by these names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

# A worker id: host, pid and a random suffix (``assistants.workers.worker_id``).
OWNER_LENGTH = 120


class LeasedJob:
    """Mixin of a job table: the lease columns (a table may widen ``owner``)."""

    owner: Mapped[str | None] = mapped_column(String(OWNER_LENGTH))
    lease_until: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    if TYPE_CHECKING:
        # Declared by each table; named here for the queue's statements.
        seq: Mapped[int]
        id: Mapped[str]
        status: Mapped[str]
