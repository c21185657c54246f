"""The budget repository: definitions, atomic reservations and settlements.

Contract: ``reserve`` adds an amount to the ``reserved`` of several budgets in one
transaction, and only if for every one of them ``spent + reserved + amount <= limit``
(after resetting ``spent`` when its period has rolled over). Each check-and-add is one
``UPDATE ... WHERE`` statement, so it is atomic on SQLite (one writer at a time) and on
PostgreSQL (the row lock makes a concurrent UPDATE re-check the condition on the newest
row). Budgets are updated in id order so two transactions never wait on each other in a
cycle. ``settle`` moves a reservation into ``spent`` at the real cost.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portway.store.database import Database
from portway.store.models import BudgetRow

_budgets = BudgetRow.__table__


@dataclass(frozen=True, slots=True)
class BudgetState:
    id: int
    scope: str
    subject: str
    limit_nanos: int
    period: str
    period_start: int
    spent_nanos: int
    reserved_nanos: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """Reserve ``amount_nanos`` on budget ``budget_id`` whose current period began at
    ``period_start`` (epoch seconds; 0 for budgets that never reset)."""

    budget_id: int
    period_start: int
    amount_nanos: int


@dataclass(frozen=True, slots=True)
class Settlement:
    budget_id: int
    period_start: int
    reserved_nanos: int
    actual_nanos: int


def _state(row: BudgetRow) -> BudgetState:
    return BudgetState(
        id=row.id,
        scope=row.scope,
        subject=row.subject,
        limit_nanos=row.limit_nanos,
        period=row.period,
        period_start=row.period_start,
        spent_nanos=row.spent_nanos,
        reserved_nanos=row.reserved_nanos,
    )


def _spent_in(period_start: int):  # type: ignore[no-untyped-def]
    """``spent`` as it is in the period starting at ``period_start`` (0 if a new period)."""
    return case((_budgets.c.period_start < period_start, 0), else_=_budgets.c.spent_nanos)


def _rolled_start(period_start: int):  # type: ignore[no-untyped-def]
    return case(
        (_budgets.c.period_start < period_start, period_start), else_=_budgets.c.period_start
    )


class BudgetRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    # Helpers usable inside another repository's session ------------------------------

    @staticmethod
    async def upsert_in(
        session: AsyncSession, scope: str, subject: str, limit_nanos: int, period: str, now: float
    ) -> None:
        row = (
            await session.scalars(
                select(BudgetRow).where(BudgetRow.scope == scope, BudgetRow.subject == subject)
            )
        ).one_or_none()
        if row is None:
            session.add(
                BudgetRow(
                    scope=scope,
                    subject=subject,
                    limit_nanos=limit_nanos,
                    period=period,
                    period_start=0,
                    spent_nanos=0,
                    reserved_nanos=0,
                    updated_at=now,
                )
            )
        else:
            row.limit_nanos = limit_nanos
            if row.period != period:
                row.period = period
                row.period_start = 0
                row.spent_nanos = 0
            row.updated_at = now
        await session.flush()

    @staticmethod
    async def delete_in(session: AsyncSession, scope: str, subject: str) -> bool:
        result = await session.execute(
            delete(BudgetRow).where(BudgetRow.scope == scope, BudgetRow.subject == subject)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def find_in(
        session: AsyncSession, subjects: Sequence[tuple[str, str]]
    ) -> list[BudgetState]:
        if not subjects:
            return []
        condition = or_(
            *(and_(BudgetRow.scope == scope, BudgetRow.subject == sub) for scope, sub in subjects)
        )
        rows = (await session.scalars(select(BudgetRow).where(condition))).all()
        return sorted((_state(row) for row in rows), key=lambda state: state.id)

    # Definitions ---------------------------------------------------------------------

    async def set(self, scope: str, subject: str, limit_nanos: int, period: str) -> BudgetState:
        async with self._db.session() as session:
            await self.upsert_in(session, scope, subject, limit_nanos, period, time.time())
            return (await self.find_in(session, [(scope, subject)]))[0]

    async def get(self, scope: str, subject: str) -> BudgetState | None:
        async with self._db.session() as session:
            found = await self.find_in(session, [(scope, subject)])
        return found[0] if found else None

    async def delete(self, scope: str, subject: str) -> bool:
        async with self._db.session() as session:
            return await self.delete_in(session, scope, subject)

    async def list(self, scope: str | None = None) -> list[BudgetState]:
        query = select(BudgetRow).order_by(BudgetRow.scope, BudgetRow.subject)
        if scope is not None:
            query = query.where(BudgetRow.scope == scope)
        async with self._db.session() as session:
            return [_state(row) for row in (await session.scalars(query)).all()]

    async def reset(self, scope: str, subject: str) -> bool:
        """Zero the spend and any reservation leaked by a crashed process."""
        async with self._db.session() as session:
            result = await session.execute(
                update(BudgetRow)
                .where(BudgetRow.scope == scope, BudgetRow.subject == subject)
                .values(spent_nanos=0, reserved_nanos=0, updated_at=time.time())
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # The hot path --------------------------------------------------------------------

    async def reserve(self, reservations: Sequence[Reservation]) -> int | None:
        """Reserve on every budget or none; returns the id of the budget that refused."""
        now = time.time()
        async with self._db.write() as connection:
            for item in sorted(reservations, key=lambda r: r.budget_id):
                spent = _spent_in(item.period_start)
                result = await connection.execute(
                    update(_budgets)
                    .where(
                        _budgets.c.id == item.budget_id,
                        spent + _budgets.c.reserved_nanos + item.amount_nanos
                        <= _budgets.c.limit_nanos,
                    )
                    .values(
                        spent_nanos=spent,
                        period_start=_rolled_start(item.period_start),
                        reserved_nanos=_budgets.c.reserved_nanos + item.amount_nanos,
                        updated_at=now,
                    )
                )
                if result.rowcount != 1:
                    await connection.rollback()
                    return item.budget_id
        return None

    async def release(self, reservations: Iterable[Reservation]) -> None:
        """Give back reservations whose call never happened."""
        await self.settle(
            [Settlement(r.budget_id, r.period_start, r.amount_nanos, 0) for r in reservations]
        )

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        async with self._db.write() as connection:
            await settle_in(connection, settlements)


async def settle_in(connection: AsyncConnection, settlements: Sequence[Settlement]) -> None:
    """Move reservations to spend, one UPDATE per budget (amounts summed, id order)."""
    totals: dict[int, list[int]] = {}
    for item in settlements:
        entry = totals.setdefault(item.budget_id, [item.period_start, 0, 0])
        entry[0] = max(entry[0], item.period_start)
        entry[1] += item.reserved_nanos
        entry[2] += item.actual_nanos
    now = time.time()
    for budget_id in sorted(totals):
        period_start, reserved, actual = totals[budget_id]
        await connection.execute(
            update(_budgets)
            .where(_budgets.c.id == budget_id)
            .values(
                spent_nanos=_spent_in(period_start) + actual,
                period_start=_rolled_start(period_start),
                reserved_nanos=case(
                    (_budgets.c.reserved_nanos > reserved, _budgets.c.reserved_nanos - reserved),
                    else_=0,
                ),
                updated_at=now,
            )
        )
