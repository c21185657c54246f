"""Repository of the architecture sketcher: sketches (claimed with leases) and versions.

Contract: client reads are scoped by ``tenant`` (another tenant's sketch is ``None``).
Every change is one guarded ``UPDATE`` (compare and set on status and holder). A
sketch waiting for a worker is ``queued`` with no holder; claiming it makes it
``in_progress`` (claims and leases are ``store.jobs.JobQueue``'s), and handing it back
(shutdown, a lapsed lease) makes it ``queued`` again with its pending operation intact,
so a sketch is never lost with the process that held it.
A version is inserted once, with the sketch's move to ``completed``, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select

from portway.store.database import Database
from portway.store.jobs import JobKind, JobQueue, update_returning
from portway.store.models.sketches import SketchRow, SketchVersionRow
from portway.store.pagination import Page, PageRequest, paginate

# Handed back, a sketch is queued again with its pending operation intact. None is
# ``due_to_expire``: a sketch waiting for answers waits as long as its owner likes.
SKETCHES = JobKind(waiting=("queued",), held=("in_progress",), lapsed_needs_holder=True)


class SketchStore(JobQueue[SketchRow]):
    """Sketches and their versions; claims and leases from ``JobQueue``."""

    def __init__(self, database: Database) -> None:
        super().__init__(database, SketchRow, SKETCHES)

    def _claimed(self, now: float) -> dict[str, Any]:
        return {"updated_at": now}

    # Client-facing -------------------------------------------------------------------

    async def create(self, sketch: SketchRow) -> SketchRow:
        async with self._db.session() as session:
            session.add(sketch)
        return sketch

    async def get(self, tenant: str, sketch_id: str) -> SketchRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(SketchRow).where(SketchRow.id == sketch_id, SketchRow.tenant == tenant)
            )
            return found.scalar_one_or_none()

    async def get_by_id(self, job_id: str) -> SketchRow | None:
        async with self._db.session() as session:
            found = await session.execute(select(SketchRow).where(SketchRow.id == job_id))
            return found.scalar_one_or_none()

    async def list(self, tenant: str, page: PageRequest) -> Page[SketchRow]:
        query = select(SketchRow).where(SketchRow.tenant == tenant)
        async with self._db.session() as session:
            return await paginate(
                session, query, page, order_by=(SketchRow.seq,), cursor=SketchRow.id
            )

    async def delete(self, tenant: str, sketch_id: str) -> bool:
        async with self._db.session() as session:
            found = await session.execute(
                select(SketchRow.id).where(SketchRow.id == sketch_id, SketchRow.tenant == tenant)
            )
            if found.scalar_one_or_none() is None:
                return False
            await session.execute(
                delete(SketchVersionRow).where(SketchVersionRow.sketch_id == sketch_id)
            )
            await session.execute(delete(SketchRow).where(SketchRow.id == sketch_id))
        return True

    async def transition(
        self,
        sketch_id: str,
        expected: Sequence[str],
        changes: dict[str, Any],
        *,
        owner: str | None = None,
    ) -> SketchRow | None:
        """Apply ``changes`` if the sketch is in an ``expected`` status (and held by
        ``owner`` when given); ``None`` when it is not."""
        conditions = [SketchRow.id == sketch_id, SketchRow.status.in_(expected)]
        if owner is not None:
            conditions.append(SketchRow.owner == owner)
        return await self._update(conditions, changes)

    # Versions ------------------------------------------------------------------------

    async def version(self, sketch_id: str, number: int) -> SketchVersionRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(SketchVersionRow).where(
                    SketchVersionRow.sketch_id == sketch_id, SketchVersionRow.number == number
                )
            )
            return found.scalar_one_or_none()

    async def versions(self, sketch_id: str) -> list[SketchVersionRow]:
        async with self._db.session() as session:
            found = await session.execute(
                select(SketchVersionRow)
                .where(SketchVersionRow.sketch_id == sketch_id)
                .order_by(SketchVersionRow.number)
            )
            return list(found.scalars())

    async def complete(
        self, sketch_id: str, owner: str, version: SketchVersionRow, changes: dict[str, Any]
    ) -> SketchRow | None:
        """Add ``version`` and make it the sketch's current one, if ``owner`` still holds
        the sketch; ``None`` (and nothing written) when it does not."""
        async with self._db.write_session() as session:
            done = await update_returning(
                session,
                SketchRow,
                [
                    SketchRow.id == sketch_id,
                    SketchRow.status == "in_progress",
                    SketchRow.owner == owner,
                    SketchRow.version == version.number - 1,
                ],
                {**changes, "version": version.number},
            )
            if done is None:
                return None
            session.add(version)
        return done
