"""One queue of leased background jobs in a table: claims, leases, recovery, hand-back.

Contract (runs, batches, sketches and background responses share it): a job waiting for
a worker is in a ``waiting`` status with no holder. Claiming it sets its holder
(``owner``) and lease and counts an attempt. Every change is one guarded
``UPDATE ... RETURNING`` (compare and set on status and holder), so two workers never
share a job and a worker that lost a job writes nothing. The oldest waiting job (``seq``)
is picked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so claimers in several
processes skip each other's rows; SQLite serialises writers, so the same statement is
atomic there. A holder renews its lease; a job whose lease lapsed is taken over once
(guarded by its previous holder), then handed back to the queue or failed by the
workers. The methods have the shapes of ``assistants.workers.JobStore``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portway.store.database import Database
from portway.store.models.jobs import LeasedJob

RowT = TypeVar("RowT", bound=LeasedJob)
MappedT = TypeVar("MappedT")


@dataclass(frozen=True)
class JobKind:
    """How one kind of job moves through its statuses, and what its workers are told."""

    # Statuses a worker claims a job from.
    waiting: tuple[str, ...]
    # Statuses of a job a worker holds: the ones recovery looks at for lapsed leases.
    held: tuple[str, ...]
    # The status a claim moves a job to; None: it keeps its (waiting) status.
    running: str | None = "in_progress"
    # Which rows of the table are jobs at all (found by claims and recovery).
    scope: tuple[ColumnElement[bool], ...] = ()
    # A waiting job may be reserved for a worker (holder and lease set when it is
    # queued): only that worker claims it by id, others once the reservation lapsed.
    reservable: bool = False
    # Recovery ignores held jobs with no holder (they are waiting, for this kind).
    lapsed_needs_holder: bool = False
    # A held job with no lease counts as lapsed.
    unset_lease_lapsed: bool = True
    # Renewal answers only the jobs still held and executing (any other is stopped and
    # writes nothing), rather than the status and holder of every job asked about.
    renew_answers_held_only: bool = False

    @property
    def executing(self) -> tuple[str, ...]:
        """Statuses of a job its holder executes (what ``requeue`` hands back)."""
        return self.waiting if self.running is None else (self.running,)


async def update_returning(
    session: AsyncSession,
    row: type[MappedT],
    conditions: Sequence[ColumnElement[bool]],
    changes: dict[str, Any],
) -> MappedT | None:
    """Apply ``changes`` to the row matching ``conditions``; the updated row, or None."""
    statement = (
        update(row)
        .where(*conditions)
        .values(**changes)
        .returning(row)
        # populate_existing: a row updated twice in one session comes back fresh.
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(statement)).scalars().first()


class JobQueue(Generic[RowT]):
    """Claims and leases of the ``row`` table's jobs of one ``kind``; a store derives
    from it and overrides the hooks for what its kind does more (``_claimed``,
    ``_handed_back``, ``due_to_expire``)."""

    def __init__(self, database: Database, row: type[RowT], kind: JobKind) -> None:
        self._db = database
        self._row = row
        self._kind = kind

    @property
    def skip_locked(self) -> bool:
        return self._db.dialect == "postgresql"

    # Hooks -----------------------------------------------------------------------

    def _claimed(self, now: float) -> dict[str, Any]:
        """More changes a claim makes (timestamps of the kind)."""
        return {}

    async def _handed_back(self, session: AsyncSession, job_id: str) -> None:
        """Forget what the interrupted attempt left half-written (same transaction)."""

    async def due_to_expire(self, now: float) -> list[RowT]:
        """Jobs waiting on their client past their deadline; none for most kinds."""
        return []

    # Claims ----------------------------------------------------------------------

    async def claim_next(self, owner: str, now: float, lease_until: float) -> RowT | None:
        """Take the oldest waiting job nobody holds."""
        row = self._row
        claimable = self._claimable(now)
        oldest = select(row.seq).where(*claimable).order_by(row.seq).limit(1)
        if self.skip_locked:
            oldest = oldest.with_for_update(skip_locked=True)
        return await self._update(
            [row.seq == oldest.scalar_subquery(), *claimable],
            self._claim_changes(owner, now, lease_until),
        )

    async def claim(self, job_id: str, owner: str, now: float, lease_until: float) -> RowT | None:
        """Take this waiting job (reserved for ``owner``, for a kind that reserves)."""
        row = self._row
        holder = row.owner == owner if self._kind.reservable else row.owner.is_(None)
        return await self._update(
            [row.id == job_id, *self._waiting(), holder],
            self._claim_changes(owner, now, lease_until),
        )

    # Leases ----------------------------------------------------------------------

    async def renew(
        self, owner: str, job_ids: Sequence[str], lease_until: float
    ) -> dict[str, tuple[str, str | None]]:
        """Extend ``owner``'s leases; ``(status, holder)`` of each job asked about that
        exists (or, for a kind that says so, only of those it still holds)."""
        if not job_ids:
            return {}
        row = self._row
        renewed = update(row).where(row.id.in_(job_ids), row.owner == owner)
        async with self._db.session() as session:
            if self._kind.renew_answers_held_only:
                held = await session.execute(
                    renewed.where(row.status.in_(self._kind.executing))
                    .values(lease_until=lease_until)
                    .returning(row.id, row.status)
                    .execution_options(synchronize_session=False)
                )
                return {job_id: (status, owner) for job_id, status in held.all()}
            await session.execute(
                renewed.values(lease_until=lease_until).execution_options(synchronize_session=False)
            )
            found = await session.execute(
                select(row.id, row.status, row.owner).where(row.id.in_(job_ids))
            )
            return {job_id: (status, holder) for job_id, status, holder in found.all()}

    async def lapsed(self, now: float, *, everything: bool = False) -> list[RowT]:
        """Held jobs whose lease ran out, oldest first (``everything``: held at all, when
        one process owns the database and has just started)."""
        row = self._row
        conditions = [row.status.in_(self._kind.held), *self._kind.scope]
        if self._kind.lapsed_needs_holder:
            conditions.append(row.owner.is_not(None))
        if not everything:
            conditions.append(self._lease_lapsed(now))
        async with self._db.session() as session:
            found = await session.execute(select(row).where(*conditions).order_by(row.seq))
            return list(found.scalars())

    async def take_over(
        self,
        job_id: str,
        previous_owner: str | None,
        owner: str,
        now: float,
        lease_until: float,
        *,
        force: bool = False,
    ) -> RowT | None:
        """Hold a job whose holder is gone: its lease lapsed (or ``force``). Guarded by the
        previous holder, so two workers noticing the same lapsed job take it over once."""
        row = self._row
        conditions = [
            row.id == job_id,
            row.status.in_(self._kind.held),
            *self._kind.scope,
            self._held_by(previous_owner),
        ]
        if not force:
            conditions.append(self._lease_lapsed(now))
        return await self._update(conditions, {"owner": owner, "lease_until": lease_until})

    async def requeue(self, job_id: str, owner: str | None, *, refund_attempt: bool) -> RowT | None:
        """Hand back a job ``owner`` executes: waiting again, what its interrupted attempt
        half-wrote forgotten (``_handed_back``); ``refund_attempt``: its holder stopped
        cleanly, so this attempt does not count."""
        row = self._row
        changes: dict[str, Any] = {"owner": None, "lease_until": None}
        if self._kind.running is not None:
            changes["status"] = self._kind.waiting[0]
        if refund_attempt:
            changes["attempts"] = row.attempts - 1
        conditions = [row.id == job_id, row.status.in_(self._kind.executing), self._held_by(owner)]
        async with self._db.session() as session:
            job = await update_returning(session, row, conditions, changes)
            if job is not None:
                await self._handed_back(session, job_id)
            return job

    # Statements ------------------------------------------------------------------

    async def _update(
        self, conditions: Sequence[ColumnElement[bool]], changes: dict[str, Any]
    ) -> RowT | None:
        async with self._db.session() as session:
            return await update_returning(session, self._row, conditions, changes)

    def _waiting(self) -> list[ColumnElement[bool]]:
        return [self._row.status.in_(self._kind.waiting), *self._kind.scope]

    def _claimable(self, now: float) -> list[ColumnElement[bool]]:
        """A waiting job nobody holds (or whose reservation lapsed)."""
        row = self._row
        free = row.owner.is_(None)
        if self._kind.reservable:
            free = or_(free, row.lease_until < now)
        return [*self._waiting(), free]

    def _claim_changes(self, owner: str, now: float, lease_until: float) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "owner": owner,
            "lease_until": lease_until,
            "attempts": self._row.attempts + 1,
        }
        if self._kind.running is not None:
            changes["status"] = self._kind.running
        return {**changes, **self._claimed(now)}

    def _held_by(self, owner: str | None) -> ColumnElement[bool]:
        return self._row.owner.is_(None) if owner is None else self._row.owner == owner

    def _lease_lapsed(self, now: float) -> ColumnElement[bool]:
        lapsed = self._row.lease_until < now
        if self._kind.unset_lease_lapsed:
            return or_(self._row.lease_until.is_(None), lapsed)
        return lapsed
