"""Repository of the Batch API: batches (claimed with leases like runs) and line results.

Contract: client reads are scoped by ``tenant`` (another tenant's batch is ``None``).
Every change is one guarded ``UPDATE`` (compare and set on status and holder), so
workers and requests never interleave a read and a write of one batch. A batch waiting
for a worker is an active one nobody holds (``owner`` null); claims and leases are
``store.jobs.JobQueue``'s. A line's result is inserted once, with the batch's counters,
in one transaction; a second result for the same line (a worker that lost its lease) is
refused by the primary key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from portway.store.database import Database
from portway.store.jobs import JobKind, JobQueue
from portway.store.models.batches import BatchLineRow, BatchRow
from portway.store.pagination import Page, PageRequest, paginate

# Statuses a worker drives; ``cancelling`` waits for its holder (or the sweeper).
EXECUTING = ("validating", "in_progress", "finalizing")
HELD = (*EXECUTING, "cancelling")

# No worker touches a batch in these states again.
FINISHED_STATUSES = ("completed", "failed", "expired", "cancelled")

# An active batch waits for a worker in the status it has. None is ``due_to_expire``: every
# active batch is claimed, and the worker executing it checks its window (writing a
# ``batch_expired`` line for each line that did not run).
BATCHES = JobKind(waiting=EXECUTING, held=HELD, running=None, lapsed_needs_holder=True)


class BatchStore(JobQueue[BatchRow]):
    """Batches and their line results; claims and leases from ``JobQueue``."""

    def __init__(self, database: Database) -> None:
        super().__init__(database, BatchRow, BATCHES)

    # Client-facing -------------------------------------------------------------------

    async def create(self, batch: BatchRow) -> BatchRow:
        async with self._db.session() as session:
            session.add(batch)
        return batch

    async def get(self, tenant: str, batch_id: str) -> BatchRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(BatchRow).where(BatchRow.id == batch_id, BatchRow.tenant == tenant)
            )
            return found.scalar_one_or_none()

    async def get_by_id(self, job_id: str) -> BatchRow | None:
        async with self._db.session() as session:
            found = await session.execute(select(BatchRow).where(BatchRow.id == job_id))
            return found.scalar_one_or_none()

    async def list(self, tenant: str, page: PageRequest) -> Page[BatchRow]:
        query = select(BatchRow).where(BatchRow.tenant == tenant)
        async with self._db.session() as session:
            return await paginate(
                session, query, page, order_by=(BatchRow.seq,), cursor=BatchRow.id
            )

    async def transition(
        self,
        batch_id: str,
        expected: Sequence[str],
        changes: dict[str, Any],
        *,
        owner: str | None = None,
    ) -> BatchRow | None:
        """Apply ``changes`` if the batch is in an ``expected`` status (and held by
        ``owner`` when given); ``None`` when it is not."""
        conditions = [BatchRow.id == batch_id, BatchRow.status.in_(expected)]
        if owner is not None:
            conditions.append(BatchRow.owner == owner)
        return await self._update(conditions, changes)

    # Lines ---------------------------------------------------------------------------

    async def finished_lines(self, batch_id: str) -> set[int]:
        async with self._db.session() as session:
            found = await session.execute(
                select(BatchLineRow.line).where(BatchLineRow.batch_id == batch_id)
            )
            return set(found.scalars())

    async def record_line(
        self, batch_id: str, line: int, ok: bool, result: dict[str, Any], usage: dict[str, int]
    ) -> bool:
        """Store a line's result and count it; False if it already had one."""
        counter = BatchRow.completed if ok else BatchRow.failed
        changes: dict[str, Any] = {counter.key: counter + 1}
        for column, tokens in usage.items():
            if tokens:
                changes[column] = getattr(BatchRow, column) + tokens
        try:
            async with self._db.write_session() as session:
                session.add(BatchLineRow(batch_id=batch_id, line=line, ok=ok, result=result))
                await session.flush()
                await session.execute(
                    update(BatchRow)
                    .where(BatchRow.id == batch_id)
                    .values(**changes)
                    .execution_options(synchronize_session=False)
                )
        except IntegrityError:
            return False
        return True

    async def results(
        self, batch_id: str, *, after: int = -1, limit: int = 1000
    ) -> list[BatchLineRow]:
        """Line results in input order, a page at a time (``after``: the last line seen)."""
        async with self._db.session() as session:
            found = await session.execute(
                select(BatchLineRow)
                .where(BatchLineRow.batch_id == batch_id, BatchLineRow.line > after)
                .order_by(BatchLineRow.line)
                .limit(limit)
            )
            return list(found.scalars())

    async def delete_finished(self, tenant: str, batch_id: str) -> BatchRow | None:
        """Delete a batch that no worker runs any more (with its line results); the
        deleted row, or None when it is missing or still running."""
        async with self._db.session() as session:
            row = (
                await session.scalars(
                    select(BatchRow).where(
                        BatchRow.id == batch_id,
                        BatchRow.tenant == tenant,
                        BatchRow.status.in_(FINISHED_STATUSES),
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            await session.execute(delete(BatchLineRow).where(BatchLineRow.batch_id == batch_id))
            await session.execute(delete(BatchRow).where(BatchRow.id == batch_id))
            return row
