"""Repository of the architecture sketcher: sketches (claimed with leases) and versions.

Contract: client reads are scoped by ``tenant`` (another tenant's sketch is ``None``).
Every change is one guarded ``UPDATE`` (compare and set on status and holder). A
sketch waiting for a worker is ``queued`` with no holder; claiming it makes it
``in_progress`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite serialises writers),
and handing it back (shutdown, a lapsed lease) makes it ``queued`` again with its
pending operation intact, so a sketch is never lost with the process that held it.
A version is inserted once, with the sketch's move to ``completed``, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portway.store.database import Database
from portway.store.models.sketches import SketchRow, SketchVersionRow
from portway.store.pagination import Page, PageRequest, paginate

HELD = ("in_progress",)


async def _update(
    session: AsyncSession, conditions: Sequence[ColumnElement[bool]], changes: dict[str, Any]
) -> SketchRow | None:
    statement = (
        update(SketchRow)
        .where(*conditions)
        .values(**changes)
        .returning(SketchRow)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(statement)).scalars().first()


class SketchStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def skip_locked(self) -> bool:
        return self._db.dialect == "postgresql"

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
        async with self._db.session() as session:
            return await _update(session, conditions, changes)

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
            done = await _update(
                session,
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

    # Workers: claims and leases (the shape of ``assistants.workers.JobStore``) ------

    async def claim_next(self, owner: str, now: float, lease_until: float) -> SketchRow | None:
        """Take the oldest queued sketch."""
        claimable = (SketchRow.status == "queued", SketchRow.owner.is_(None))
        oldest = select(SketchRow.seq).where(*claimable).order_by(SketchRow.seq).limit(1)
        if self.skip_locked:
            oldest = oldest.with_for_update(skip_locked=True)
        async with self._db.session() as session:
            return await _update(
                session,
                [SketchRow.seq == oldest.scalar_subquery(), *claimable],
                _claim_changes(owner, now, lease_until),
            )

    async def claim(
        self, job_id: str, owner: str, now: float, lease_until: float
    ) -> SketchRow | None:
        async with self._db.session() as session:
            return await _update(
                session,
                [SketchRow.id == job_id, SketchRow.status == "queued", SketchRow.owner.is_(None)],
                _claim_changes(owner, now, lease_until),
            )

    async def renew(
        self, owner: str, job_ids: Sequence[str], lease_until: float
    ) -> dict[str, tuple[str, str | None]]:
        if not job_ids:
            return {}
        async with self._db.session() as session:
            await session.execute(
                update(SketchRow)
                .where(SketchRow.id.in_(job_ids), SketchRow.owner == owner)
                .values(lease_until=lease_until)
                .execution_options(synchronize_session=False)
            )
            found = await session.execute(
                select(SketchRow.id, SketchRow.status, SketchRow.owner).where(
                    SketchRow.id.in_(job_ids)
                )
            )
            return {job_id: (status, holder) for job_id, status, holder in found.all()}

    async def lapsed(self, now: float, *, everything: bool = False) -> list[SketchRow]:
        """Held sketches whose lease ran out (``everything``: held at all)."""
        conditions = [SketchRow.status.in_(HELD), SketchRow.owner.is_not(None)]
        if not everything:
            conditions.append(SketchRow.lease_until < now)
        async with self._db.session() as session:
            found = await session.execute(
                select(SketchRow).where(*conditions).order_by(SketchRow.seq)
            )
            return list(found.scalars())

    async def due_to_expire(self, now: float) -> list[SketchRow]:
        """None: a sketch waiting for answers waits as long as its owner likes."""
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
    ) -> SketchRow | None:
        conditions = [
            SketchRow.id == job_id,
            SketchRow.status.in_(HELD),
            SketchRow.owner.is_(None)
            if previous_owner is None
            else SketchRow.owner == previous_owner,
        ]
        if not force:
            conditions.append(or_(SketchRow.lease_until.is_(None), SketchRow.lease_until < now))
        async with self._db.session() as session:
            return await _update(session, conditions, {"owner": owner, "lease_until": lease_until})

    async def requeue(self, job_id: str, owner: str, *, refund_attempt: bool) -> SketchRow | None:
        """Let go of a sketch this worker holds: queued again, its pending work kept."""
        changes: dict[str, Any] = {"status": "queued", "owner": None, "lease_until": None}
        if refund_attempt:
            changes["attempts"] = SketchRow.attempts - 1
        async with self._db.session() as session:
            return await _update(
                session,
                [SketchRow.id == job_id, SketchRow.status.in_(HELD), SketchRow.owner == owner],
                changes,
            )


def _claim_changes(owner: str, now: float, lease_until: float) -> dict[str, Any]:
    return {
        "status": "in_progress",
        "owner": owner,
        "lease_until": lease_until,
        "attempts": SketchRow.attempts + 1,
        "updated_at": now,
    }
