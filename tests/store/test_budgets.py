"""Budget reservations on SQLite and PostgreSQL: atomic, all-or-nothing, period resets."""

from __future__ import annotations

import asyncio

from portway.accounting.budgets import period_start
from portway.store import Database
from portway.store.budgets import BudgetRepository, Reservation, Settlement


async def test_concurrent_reservations_never_exceed_the_limit(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("team", "red", limit_nanos=1000, period="total")
    reservation = Reservation(budget.id, 0, 100)
    results = await asyncio.gather(*(budgets.reserve([reservation]) for _ in range(25)))
    assert results.count(None) == 10
    state = await budgets.get("team", "red")
    assert state is not None and state.reserved_nanos == 1000 and state.spent_nanos == 0


async def test_reservation_is_all_or_nothing(database: Database) -> None:
    budgets = BudgetRepository(database)
    roomy = await budgets.set("user", "alice", 1000, "total")
    tight = await budgets.set("team", "red", 50, "total")
    refused = await budgets.reserve([Reservation(roomy.id, 0, 100), Reservation(tight.id, 0, 100)])
    assert refused == tight.id
    alice = await budgets.get("user", "alice")
    assert alice is not None and alice.reserved_nanos == 0


async def test_settle_moves_reservation_to_spend(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("key", "k1", 1000, "total")
    assert await budgets.reserve([Reservation(budget.id, 0, 400)]) is None
    await budgets.settle([Settlement(budget.id, 0, reserved_nanos=400, actual_nanos=120)])
    state = await budgets.get("key", "k1")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (120, 0)
    assert await budgets.reserve([Reservation(budget.id, 0, 880)]) is None
    assert await budgets.reserve([Reservation(budget.id, 0, 1)]) == budget.id


async def test_a_new_period_resets_the_spend(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("user", "bob", 100, "daily")
    monday = period_start("daily", 1_700_000_000)
    tuesday = monday + 86_400
    assert await budgets.reserve([Reservation(budget.id, monday, 100)]) is None
    await budgets.settle([Settlement(budget.id, monday, 100, 100)])
    assert await budgets.reserve([Reservation(budget.id, monday, 1)]) == budget.id
    assert await budgets.reserve([Reservation(budget.id, tuesday, 60)]) is None
    state = await budgets.get("user", "bob")
    assert state is not None
    assert (state.period_start, state.spent_nanos, state.reserved_nanos) == (tuesday, 0, 60)


def test_period_starts_are_utc_boundaries() -> None:
    moment = 1_700_000_000  # 2023-11-14T22:13:20Z, a Tuesday
    assert period_start("daily", moment) == 1_699_920_000  # 2023-11-14T00:00Z
    assert period_start("weekly", moment) == 1_699_833_600  # Monday 2023-11-13T00:00Z
    assert period_start("monthly", moment) == 1_698_796_800  # 2023-11-01T00:00Z
    assert period_start("total", moment) == 0
