"""Repository of the Batch API: batches (claimed with leases like runs) and line results.

Contract: client reads are scoped by ``tenant`` (another tenant's batch is ``None``).
Every change is one guarded ``UPDATE`` (compare and set on status and holder), so
workers and requests never interleave a read and a write of one batch. A batch waiting
for a worker is an active one nobody holds (``owner`` null); it is claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises writers). A line's result is
inserted once, with the batch's counters, in one transaction; a second result for the
same line (a worker that lost its lease) is refused by the primary key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portway.store.database import Database
from portway.store.models.batches import BatchLineRow, BatchRow
from portway.store.pagination import Page, PageRequest, paginate

# Statuses a worker drives; ``cancelling`` waits for its holder (or the sweeper).
EXECUTING = ("validating", "in_progress", "finalizing")
HELD = (*EXECUTING, "cancelling")


async def _update(
    session: AsyncSession, conditions: Sequence[ColumnElement[bool]], changes: dict[str, Any]
) -> BatchRow | None:
    statement = (
        update(BatchRow)
        .where(*conditions)
        .values(**changes)
        .returning(BatchRow)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(statement)).scalars().first()


# No worker touches a batch in these states again.
FINISHED_STATUSES = ("completed", "failed", "expired", "cancelled")


class BatchStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def skip_locked(self) -> bool:
        return self._db.dialect == "postgresql"

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
        async with self._db.session() as session:
            return await _update(session, conditions, changes)

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

    # Workers: claims and leases (the shape of ``assistants.workers.JobStore``) ------

    async def claim_next(self, owner: str, now: float, lease_until: float) -> BatchRow | None:
        """Take the oldest active batch nobody holds."""
        claimable = (BatchRow.status.in_(EXECUTING), BatchRow.owner.is_(None))
        oldest = select(BatchRow.seq).where(*claimable).order_by(BatchRow.seq).limit(1)
        if self.skip_locked:
            oldest = oldest.with_for_update(skip_locked=True)
        async with self._db.session() as session:
            return await _update(
                session,
                [BatchRow.seq == oldest.scalar_subquery(), *claimable],
                _claim_changes(owner, lease_until),
            )

    async def claim(
        self, job_id: str, owner: str, now: float, lease_until: float
    ) -> BatchRow | None:
        async with self._db.session() as session:
            return await _update(
                session,
                [BatchRow.id == job_id, BatchRow.status.in_(EXECUTING), BatchRow.owner.is_(None)],
                _claim_changes(owner, lease_until),
            )

    async def renew(
        self, owner: str, job_ids: Sequence[str], lease_until: float
    ) -> dict[str, tuple[str, str | None]]:
        if not job_ids:
            return {}
        async with self._db.session() as session:
            await session.execute(
                update(BatchRow)
                .where(BatchRow.id.in_(job_ids), BatchRow.owner == owner)
                .values(lease_until=lease_until)
                .execution_options(synchronize_session=False)
            )
            found = await session.execute(
                select(BatchRow.id, BatchRow.status, BatchRow.owner).where(BatchRow.id.in_(job_ids))
            )
            return {job_id: (status, holder) for job_id, status, holder in found.all()}

    async def lapsed(self, now: float, *, everything: bool = False) -> list[BatchRow]:
        """Held batches whose lease ran out (``everything``: held at all)."""
        conditions = [BatchRow.status.in_(HELD), BatchRow.owner.is_not(None)]
        if not everything:
            conditions.append(BatchRow.lease_until < now)
        async with self._db.session() as session:
            found = await session.execute(
                select(BatchRow).where(*conditions).order_by(BatchRow.seq)
            )
            return list(found.scalars())

    async def due_to_expire(self, now: float) -> list[BatchRow]:
        """None: a batch's window is checked by the worker executing it (every active batch
        is claimed), which writes a ``batch_expired`` line for each line that did not run."""
        return []

    async def take_over(
        self,
        job_id: str,
        previous_owner: str | None,
        owner: str,
        now: float,
        lease_until: float,
        *,
        force: bool = False,
    ) -> BatchRow | None:
        conditions = [
            BatchRow.id == job_id,
            BatchRow.status.in_(HELD),
            BatchRow.owner.is_(None)
            if previous_owner is None
            else BatchRow.owner == previous_owner,
        ]
        if not force:
            conditions.append(or_(BatchRow.lease_until.is_(None), BatchRow.lease_until < now))
        async with self._db.session() as session:
            return await _update(session, conditions, {"owner": owner, "lease_until": lease_until})

    async def requeue(self, job_id: str, owner: str, *, refund_attempt: bool) -> BatchRow | None:
        """Let go of a batch this worker holds; the next claim resumes it."""
        changes: dict[str, Any] = {"owner": None, "lease_until": None}
        if refund_attempt:
            changes["attempts"] = BatchRow.attempts - 1
        async with self._db.session() as session:
            return await _update(
                session,
                [BatchRow.id == job_id, BatchRow.status.in_(EXECUTING), BatchRow.owner == owner],
                changes,
            )


def _claim_changes(owner: str, lease_until: float) -> dict[str, Any]:
    return {"owner": owner, "lease_until": lease_until, "attempts": BatchRow.attempts + 1}

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
