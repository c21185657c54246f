"""The budget repository: definitions, and the leases processes reserve against.

Contract (the database side of ``accounting.leases``; the proof is there):
- Invariant: for every budget, ``reserved_nanos`` is the sum of its live leases' amounts
  and ``spent_nanos + reserved_nanos <= limit_nanos`` after every transaction that grows
  a lease (``claim``). Nothing else grows ``spent + reserved``: settling moves an amount
  from a lease to ``spent``, giving back and releasing shrink ``reserved``, forfeiting
  moves a lease to ``spent``. (Only a real cost above its worst case, or an admin
  lowering the limit, can leave a budget over its limit; then nothing more is granted.)
- ``claim`` grants a holder its ``need`` plus spare up to ``want`` (at most half of what
  the budget has left) in one transaction, or nothing.
- Settlements (``settle_in``, in the ledger's transaction) carry the lease they were
  reserved on and move their cost from it to ``spent``.
- Leases expire unless renewed (``sync``). An expired lease is *forfeited*: its whole
  amount is charged to ``spent`` (its holder may have spent all of it) and the row stays
  as a tombstone. Settlements of a forfeited lease that turn up later (the dead holder's
  journal) only shrink the tombstone: they were charged already.
- ``release_holders`` is for holders whose every settlement is committed (graceful
  shutdown, a recovered journal): live leases are freed, and a tombstone's unspent rest
  is refunded (if its budget is still in the period it was charged in).
- Periods roll over lazily: the first write in a new period zeroes ``spent``. A
  settlement belongs to the period its reservation was made in; one that arrives after
  its period closed shrinks its lease but is not added to the new period's spend.
Locking: every transaction locks the budget rows it touches first, in id order, before
any lease row, so concurrent transactions never wait on each other in a cycle.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portway import periods
from portway.store.database import Database
from portway.store.models import BudgetLeaseRow, BudgetRow

_budgets = BudgetRow.__table__
_leases = BudgetLeaseRow.__table__
# How many budgets one sweep forfeits expired leases of (the rest wait for the next).
SWEEP_LIMIT = 200
# Tombstones of leases whose holder never came back are kept this long for a refund.
TOMBSTONE_SECONDS = 7 * 86_400
_live = _leases.c.forfeited_at.is_(None)


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
class Settlement:
    """A reservation of ``reserved_nanos`` made on ``lease_id`` in the period starting at
    ``period_start`` cost ``actual_nanos``. (``lease_id`` None: a journal line written
    before leases existed; it settles against the budget's ``reserved`` directly.)"""

    budget_id: int
    period_start: int
    reserved_nanos: int
    actual_nanos: int
    lease_id: int | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a claim: ``granted`` > 0 on ``lease_id``, or a refusal."""

    status: str  # "granted" | "refused" | "missing" (the budget was deleted)
    lease_id: int | None = None
    granted: int = 0
    available: int = 0


@dataclass(frozen=True, slots=True)
class LeaseSync:
    """What a holder gives back from one lease at a sync (renewing it too)."""

    budget_id: int
    lease_id: int
    give_back: int = 0
    drop: bool = False  # the lease is empty and idle: delete it


def _state(row: Any) -> BudgetState:
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


async def lock_budgets(connection: AsyncConnection, budget_ids: Iterable[int]) -> None:
    """Take the write locks of these budget rows, in id order (see the module contract)."""
    ids = sorted(set(budget_ids))
    if not ids:
        return
    if connection.dialect.name == "postgresql":
        await connection.execute(
            select(_budgets.c.id)
            .where(_budgets.c.id.in_(ids))
            .order_by(_budgets.c.id)
            .with_for_update()
        )
    else:
        # SQLite locks the whole file on the first write; a transaction must write before
        # it reads, or a concurrent writer's commit makes its later write fail.
        await connection.execute(
            update(_budgets).where(_budgets.c.id.in_(ids)).values(updated_at=_budgets.c.updated_at)
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
        found = (
            await session.execute(
                select(_budgets.c.id).where(
                    _budgets.c.scope == scope, _budgets.c.subject == subject
                )
            )
        ).scalar_one_or_none()
        if found is None:
            return False
        await lock_budgets(await session.connection(), [found])
        # Explicitly, not only by ON DELETE CASCADE: SQLite enforces it only when told to.
        await session.execute(delete(_leases).where(_leases.c.budget_id == found))
        await session.execute(delete(_budgets).where(_budgets.c.id == found))
        return True

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
        """Zero the spend; drop expired leases and tombstones (crashed processes')."""
        found = await self.get(scope, subject)
        if found is None:
            return False
        now = time.time()
        async with self._db.write() as connection:
            await lock_budgets(connection, [found.id])
            await connection.execute(
                delete(_leases).where(
                    _leases.c.budget_id == found.id,
                    or_(_leases.c.expires_at < now, _leases.c.forfeited_at.is_not(None)),
                )
            )
            leased = (
                await connection.execute(
                    select(func.coalesce(func.sum(_leases.c.amount_nanos), 0)).where(
                        _leases.c.budget_id == found.id
                    )
                )
            ).scalar_one()
            result = await connection.execute(
                update(_budgets)
                .where(_budgets.c.id == found.id)
                .values(spent_nanos=0, reserved_nanos=int(leased), updated_at=now)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def leases(self, budget_id: int) -> list[dict[str, Any]]:
        """The leases held on a budget (for tests and diagnostics)."""
        async with self._db.connect() as connection:
            result = await connection.execute(
                select(_leases).where(_leases.c.budget_id == budget_id).order_by(_leases.c.id)
            )
            return [dict(row) for row in result.mappings().all()]

    # Leases ----------------------------------------------------------------------------

    async def claim(
        self,
        budget_id: int,
        holder: str,
        lease_id: int | None,
        *,
        need: int,
        want: int,
        period_start: int,
        ttl: float,
        now: float | None = None,
    ) -> Claim:
        """Grow ``holder``'s lease on a budget by ``need`` (plus spare up to ``want``, at
        most half of what the budget has left), or refuse.

        ``lease_id`` is the holder's lease as it knows it; if that lease is gone
        (forfeited) a new one is created and its id returned.
        """
        now = time.time() if now is None else now
        async with self._db.write() as connection:
            await lock_budgets(connection, [budget_id])
            row = (
                await connection.execute(select(_budgets).where(_budgets.c.id == budget_id))
            ).first()
            if row is None:
                return Claim("missing")
            spent = 0 if row.period_start < period_start else row.spent_nanos
            rolled_start = max(row.period_start, period_start)
            reserved = row.reserved_nanos
            available = row.limit_nanos - spent - reserved
            if available < need:
                await connection.execute(
                    update(_budgets)
                    .where(_budgets.c.id == budget_id)
                    .values(
                        spent_nanos=spent,
                        period_start=rolled_start,
                        reserved_nanos=reserved,
                        contended_at=now,
                        updated_at=now,
                    )
                )
                return Claim("refused", available=max(available, 0))
            # Spare beyond the need: at most half of what is left, so other holders (and
            # this one, later) still find some.
            granted = need + min(max(want - need, 0), (available - need) // 2)
            await connection.execute(
                update(_budgets)
                .where(_budgets.c.id == budget_id)
                .values(
                    spent_nanos=spent,
                    period_start=rolled_start,
                    reserved_nanos=reserved + granted,
                    updated_at=now,
                )
            )
            if lease_id is not None:
                result = await connection.execute(
                    update(_leases)
                    .where(_leases.c.id == lease_id, _leases.c.holder == holder, _live)
                    .values(amount_nanos=_leases.c.amount_nanos + granted, expires_at=now + ttl)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return Claim("granted", lease_id, granted, available)
            # A new lease (the one the holder knew was forfeited, or it had none).
            result = await connection.execute(
                insert(_leases).values(
                    budget_id=budget_id,
                    holder=holder,
                    amount_nanos=granted,
                    expires_at=now + ttl,
                )
            )
            new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            return Claim("granted", new_id, granted, available)

    async def contended(self, budget_ids: Sequence[int], since: float) -> frozenset[int]:
        """Budgets a claim was refused on since ``since``, or that are over their limit."""
        if not budget_ids:
            return frozenset()
        query = select(_budgets.c.id).where(
            _budgets.c.id.in_(list(budget_ids)),
            or_(
                _budgets.c.contended_at >= since,
                _budgets.c.spent_nanos + _budgets.c.reserved_nanos > _budgets.c.limit_nanos,
            ),
        )
        async with self._db.connect() as connection:
            return frozenset((await connection.execute(query)).scalars())

    async def sync(
        self, holder: str, syncs: Sequence[LeaseSync], *, ttl: float, now: float | None = None
    ) -> frozenset[int]:
        """Renew the holder's leases, give back what it does not need, drop idle ones;
        returns the ids of the leases that no longer exist (forfeited, budget deleted)."""
        now = time.time() if now is None else now
        if not syncs:
            return frozenset()
        async with self._db.write() as connection:
            await lock_budgets(connection, [s.budget_id for s in syncs])
            rows = (
                await connection.execute(
                    select(_leases.c.id, _leases.c.amount_nanos).where(
                        _leases.c.id.in_([s.lease_id for s in syncs]),
                        _leases.c.holder == holder,
                        _live,
                    )
                )
            ).all()
            amounts = {row.id: row.amount_nanos for row in rows}
            freed: dict[int, int] = defaultdict(int)
            renew: list[int] = []
            for item in sorted(syncs, key=lambda s: s.lease_id):
                if item.lease_id not in amounts:
                    continue
                if item.drop:
                    freed[item.budget_id] += amounts[item.lease_id]
                    await connection.execute(delete(_leases).where(_leases.c.id == item.lease_id))
                elif item.give_back > 0:
                    freed[item.budget_id] += item.give_back
                    await connection.execute(
                        update(_leases)
                        .where(_leases.c.id == item.lease_id)
                        .values(
                            amount_nanos=_leases.c.amount_nanos - item.give_back,
                            expires_at=now + ttl,
                        )
                    )
                else:
                    renew.append(item.lease_id)
            if renew:
                await connection.execute(
                    update(_leases).where(_leases.c.id.in_(renew)).values(expires_at=now + ttl)
                )
            await _shrink_reserved(connection, freed, now)
        return frozenset(s.lease_id for s in syncs if s.lease_id not in amounts)

    async def release_holders(self, holders: Sequence[str]) -> int:
        """Free every lease of these holders and refund their tombstones' unspent rest
        (call only when every settlement of theirs is committed)."""
        if not holders:
            return 0
        query = select(_leases.c.budget_id).where(_leases.c.holder.in_(list(holders)))
        async with self._db.connect() as connection:
            budget_ids = (await connection.execute(query.distinct())).scalars().all()
        if not budget_ids:
            return 0
        now = time.time()
        async with self._db.write() as connection:
            await lock_budgets(connection, budget_ids)
            leases = (
                await connection.execute(
                    select(_leases).where(
                        _leases.c.holder.in_(list(holders)), _leases.c.budget_id.in_(budget_ids)
                    )
                )
            ).all()
            budgets = {
                row.id: row
                for row in (
                    await connection.execute(
                        select(_budgets.c.id, _budgets.c.period, _budgets.c.period_start).where(
                            _budgets.c.id.in_(budget_ids)
                        )
                    )
                ).all()
            }
            freed: dict[int, int] = defaultdict(int)
            refunds: dict[int, int] = defaultdict(int)
            for lease in leases:
                if lease.forfeited_at is None:
                    freed[lease.budget_id] += lease.amount_nanos
                    continue
                budget = budgets.get(lease.budget_id)
                charged_in = budget and periods.period_start(budget.period, lease.forfeited_at)
                if budget is not None and charged_in == budget.period_start:
                    refunds[lease.budget_id] += max(lease.amount_nanos, 0)
            if leases:
                await connection.execute(
                    delete(_leases).where(_leases.c.id.in_([lease.id for lease in leases]))
                )
            await _shrink_reserved(connection, freed, now)
            for budget_id in sorted(refunds):
                if refunds[budget_id]:
                    refunded = _budgets.c.spent_nanos - refunds[budget_id]
                    await connection.execute(
                        update(_budgets)
                        .where(_budgets.c.id == budget_id)
                        .values(spent_nanos=case((refunded > 0, refunded), else_=0), updated_at=now)
                    )
        return len(leases)

    async def forfeit_expired(self, now: float | None = None) -> int:
        """Charge the leases nobody renewed in time (their holders died) to their budgets;
        returns how many budgets had one."""
        now = time.time() if now is None else now
        query = select(_leases.c.budget_id).where(_leases.c.expires_at < now, _live)
        async with self._db.connect() as connection:
            budget_ids = (
                (await connection.execute(query.distinct().limit(SWEEP_LIMIT))).scalars().all()
            )
            stale = (
                (
                    await connection.execute(
                        select(_leases.c.id)
                        .where(_leases.c.forfeited_at < now - TOMBSTONE_SECONDS)
                        .limit(SWEEP_LIMIT)
                    )
                )
                .scalars()
                .all()
            )
        if stale:
            async with self._db.write() as connection:
                await connection.execute(delete(_leases).where(_leases.c.id.in_(stale)))
        if not budget_ids:
            return 0
        async with self._db.write() as connection:
            await lock_budgets(connection, budget_ids)
            charged, freed = await _forfeit_expired(connection, budget_ids, now)
            for budget_id in sorted(freed):
                await connection.execute(
                    update(_budgets)
                    .where(_budgets.c.id == budget_id)
                    .values(
                        spent_nanos=_budgets.c.spent_nanos + charged.get(budget_id, 0),
                        reserved_nanos=_budgets.c.reserved_nanos - freed[budget_id],
                        updated_at=now,
                    )
                )
        return len(freed)

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        async with self._db.write() as connection:
            await settle_in(connection, settlements)


async def _shrink_reserved(
    connection: AsyncConnection, freed: Mapping[int, int], now: float
) -> None:
    for budget_id in sorted(freed):
        if freed[budget_id]:
            await connection.execute(
                update(_budgets)
                .where(_budgets.c.id == budget_id)
                .values(reserved_nanos=_budgets.c.reserved_nanos - freed[budget_id], updated_at=now)
            )


async def _forfeit_expired(
    connection: AsyncConnection, budget_ids: Sequence[int], now: float
) -> tuple[dict[int, int], dict[int, int]]:
    """Turn the expired leases of budgets already locked into tombstones; returns (charge,
    freed) per budget for the caller to apply: a lease's positive amount is charged as
    spent (its holder may have spent all of it), and the whole amount leaves ``reserved``.

    The charge goes to the budget's current period: the spend it stands for may have
    happened up to the expiry, so charging it to an older period could let it escape.
    """
    rows = (
        await connection.execute(
            select(_leases.c.id, _leases.c.budget_id, _leases.c.amount_nanos).where(
                _leases.c.budget_id.in_(list(budget_ids)), _leases.c.expires_at < now, _live
            )
        )
    ).all()
    charged: dict[int, int] = defaultdict(int)
    freed: dict[int, int] = defaultdict(int)
    if not rows:
        return charged, freed
    for lease in rows:
        charged[lease.budget_id] += max(lease.amount_nanos, 0)
        freed[lease.budget_id] += lease.amount_nanos
    await connection.execute(
        update(_leases)
        .where(_leases.c.id.in_([lease.id for lease in rows]))
        .values(forfeited_at=now)
    )
    # Roll each budget into its current period first, so the charge lands there.
    budgets = (
        await connection.execute(
            select(_budgets.c.id, _budgets.c.period, _budgets.c.period_start).where(
                _budgets.c.id.in_(sorted(freed))
            )
        )
    ).all()
    for budget in budgets:
        start = periods.period_start(budget.period, now)
        if budget.period_start < start:
            await connection.execute(
                update(_budgets)
                .where(_budgets.c.id == budget.id)
                .values(spent_nanos=0, period_start=start)
            )
    return charged, freed


def _spent_after(period_start: int, amount: int):  # type: ignore[no-untyped-def]
    """``spent`` once ``amount`` spent in the period starting at ``period_start`` is added."""
    return case(
        (_budgets.c.period_start < period_start, amount),  # a new period begins with it
        (_budgets.c.period_start > period_start, _budgets.c.spent_nanos),  # a closed one
        else_=_budgets.c.spent_nanos + amount,
    )


def _rolled_start(period_start: int):  # type: ignore[no-untyped-def]
    return case(
        (_budgets.c.period_start < period_start, period_start), else_=_budgets.c.period_start
    )


async def settle_in(
    connection: AsyncConnection, settlements: Sequence[Settlement], *, wrote: bool = False
) -> None:
    """Move settled amounts from their leases to ``spent`` (see the module contract).

    ``wrote``: the transaction has written already (SQLite then holds its only write
    lock, so the budget rows need no locking of their own).
    """
    if not settlements:
        return
    # (budget, lease, period) -> [reserved, actual]
    totals: dict[tuple[int, int | None, int], list[int]] = defaultdict(lambda: [0, 0])
    for item in settlements:
        entry = totals[(item.budget_id, item.lease_id, item.period_start)]
        entry[0] += item.reserved_nanos
        entry[1] += item.actual_nanos
    if not (wrote and connection.dialect.name == "sqlite"):
        await lock_budgets(connection, (budget_id for budget_id, _, _ in totals))
    now = time.time()
    for (budget_id, lease_id, period_start), (reserved, actual) in sorted(
        totals.items(), key=lambda item: (item[0][0], item[0][1] or 0, item[0][2])
    ):
        if lease_id is None:  # a journal line from before leases: the old rule
            shrink = case(
                (_budgets.c.reserved_nanos > reserved, _budgets.c.reserved_nanos - reserved),
                else_=0,
            )
        else:
            # Safe without reading first: a forfeit needs the budget row's lock, held here.
            lease = (
                await connection.execute(
                    update(_leases)
                    .where(_leases.c.id == lease_id)
                    .values(amount_nanos=_leases.c.amount_nanos - actual)
                    .returning(_leases.c.forfeited_at)
                )
            ).first()
            if lease is None:
                continue  # its budget was deleted (or a tombstone long purged)
            if lease.forfeited_at is not None:
                continue  # charged in full when it was forfeited
            shrink = _budgets.c.reserved_nanos - actual
        await connection.execute(
            update(_budgets)
            .where(_budgets.c.id == budget_id)
            .values(
                spent_nanos=_spent_after(period_start, actual),
                period_start=_rolled_start(period_start),
                reserved_nanos=shrink,
                updated_at=now,
            )
        )
