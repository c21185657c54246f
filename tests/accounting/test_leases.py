"""Budget holds in process memory against leased slices: no overspend, few round trips."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from portway.accounting.leases import BudgetLeases, Hold, Want
from portway.accounting.ledger import UsageRecord
from portway.config import BudgetsConfig
from portway.periods import period_start
from portway.store import Database
from portway.store.budgets import BudgetRepository, Claim, Settlement

CONFIG = BudgetsConfig(sync_interval_seconds=1.0, lease_ttl_seconds=30.0)
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z, a Tuesday


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingRepository(BudgetRepository):
    """The real repository, counting the claims (database round trips on the hot path)."""

    claims = 0

    async def claim(self, *args, **kwargs) -> Claim:  # type: ignore[no-untyped-def]
        self.claims += 1
        return await super().claim(*args, **kwargs)


async def settle(leases: BudgetLeases, holds: Sequence[Hold], actual: int) -> None:
    """What the usage recorder and the ledger writer do after a call."""
    settlements = leases.settle(holds, actual)
    await leases.repository.settle(settlements)
    leases.committed(settlements)


async def test_holds_come_from_the_lease_not_the_database(sqlite_database_url: str) -> None:
    database = Database(sqlite_database_url)
    await database.start()
    try:
        repository = CountingRepository(database)
        budget = await repository.set("key", "k", 10**9, "total")
        leases = BudgetLeases(repository, CONFIG)
        for _ in range(500):
            holds = await leases.reserve([Want(budget.id, 0, 1000)])
            assert not isinstance(holds, int)
            await settle(leases, holds, 700)
        assert repository.claims <= 8  # slices grow with demand
        state = await repository.get("key", "k")
        assert state is not None and state.spent_nanos == 500 * 700
        await leases.close()
        state = await repository.get("key", "k")
        assert state is not None and (state.spent_nanos, state.reserved_nanos) == (350_000, 0)
        assert await repository.leases(budget.id) == []
    finally:
        await database.close()


async def test_two_holders_never_overspend(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("team", "t", 1000, "total")
    holders = [BudgetLeases(budgets, CONFIG) for _ in range(2)]
    rng = random.Random(7)
    spent = 0  # real costs of finished calls
    in_flight = 0  # worst cases of running calls
    exposure = 0  # the most that could have been spent at any moment

    async def call(index: int) -> bool:
        nonlocal spent, in_flight, exposure
        leases = holders[index % 2]
        holds = await leases.reserve([Want(budget.id, 0, 30)])
        if isinstance(holds, int):
            return False
        in_flight += 30
        exposure = max(exposure, spent + in_flight)
        await asyncio.sleep(rng.random() / 100)
        in_flight -= 30
        spent += 20  # cheaper than the worst case
        await settle(leases, holds, 20)
        return True

    results = await asyncio.gather(*(call(i) for i in range(120)))
    assert exposure <= 1000
    state = await budgets.get("team", "t")
    assert state is not None and state.spent_nanos == spent == 20 * results.count(True)
    # Each holder may strand less than one call's worth of its slice.
    assert results.count(True) >= (1000 - 2 * 29) // 30
    for leases in holders:
        await leases.close()
    state = await budgets.get("team", "t")
    assert state is not None and state.reserved_nanos == 0


async def test_a_refusal_keeps_no_hold_on_other_budgets(sqlite_database_url: str) -> None:
    database = Database(sqlite_database_url)
    await database.start()
    try:
        repository = BudgetRepository(database)
        roomy = await repository.set("user", "alice", 1000, "total")
        tight = await repository.set("team", "red", 50, "total")
        leases = BudgetLeases(repository, CONFIG)
        refused = await leases.reserve([Want(roomy.id, 0, 100), Want(tight.id, 0, 100)])
        assert refused == tight.id
        assert all(entry["in_flight"] == 0 for entry in leases.stats().values())
        holds = await leases.reserve([Want(roomy.id, 0, 100), Want(tight.id, 0, 40)])
        assert isinstance(holds, list) and len(holds) == 2
    finally:
        await database.close()


async def test_spare_slice_comes_back_when_another_holder_is_refused(
    sqlite_database_url: str,
) -> None:
    database = Database(sqlite_database_url)
    await database.start()
    try:
        repository = BudgetRepository(database)
        budget = await repository.set("key", "k", 1000, "total")
        clock = Clock()
        first = BudgetLeases(repository, CONFIG, clock=clock)
        second = BudgetLeases(repository, CONFIG, clock=clock)
        holds = await first.reserve([Want(budget.id, 0, 100)])  # leases 100 + 450 spare
        assert isinstance(holds, list)
        assert await second.reserve([Want(budget.id, 0, 500)]) == budget.id
        clock.now += 1
        await first.sync()  # sees the refusal: keeps only what is in flight
        assert first.stats()[budget.id]["granted"] == 100
        assert isinstance(await second.reserve([Want(budget.id, 0, 500)]), list)
    finally:
        await database.close()


async def test_idle_leases_are_given_back(sqlite_database_url: str) -> None:
    database = Database(sqlite_database_url)
    await database.start()
    try:
        repository = BudgetRepository(database)
        budget = await repository.set("key", "k", 10_000, "total")
        clock = Clock()
        leases = BudgetLeases(repository, CONFIG, clock=clock)
        holds = await leases.reserve([Want(budget.id, 0, 100)])
        assert isinstance(holds, list)
        await settle(leases, holds, 60)
        clock.now += 1
        await leases.sync()  # used in the last interval: keeps some spare
        assert len(await repository.leases(budget.id)) == 1
        clock.now += 1
        await leases.sync()  # idle for a whole interval: all of it goes back
        assert await repository.leases(budget.id) == []
        state = await repository.get("key", "k")
        assert state is not None and (state.spent_nanos, state.reserved_nanos) == (60, 0)
    finally:
        await database.close()


async def test_a_new_period_starts_from_zero(sqlite_database_url: str) -> None:
    database = Database(sqlite_database_url)
    await database.start()
    try:
        repository = BudgetRepository(database)
        budget = await repository.set("user", "bob", 100, "daily")
        clock = Clock()
        leases = BudgetLeases(repository, CONFIG, clock=clock)
        today = period_start("daily", clock.now)
        holds = await leases.reserve([Want(budget.id, today, 100)])
        assert isinstance(holds, list)
        await settle(leases, holds, 100)
        assert await leases.reserve([Want(budget.id, today, 1)]) == budget.id
        clock.now += 86_400
        tomorrow = period_start("daily", clock.now)
        holds = await leases.reserve([Want(budget.id, tomorrow, 100)])
        assert isinstance(holds, list)
        state = await repository.get("user", "bob")
        assert state is not None and (state.period_start, state.spent_nanos) == (tomorrow, 0)
    finally:
        await database.close()


async def test_a_lease_lost_to_expiry_is_replaced(sqlite_database_url: str) -> None:
    database = Database(sqlite_database_url)
    await database.start()
    try:
        repository = BudgetRepository(database)
        budget = await repository.set("key", "k", 10_000, "total")
        clock = Clock()
        slow = BudgetLeases(repository, CONFIG, clock=clock)
        holds = await slow.reserve([Want(budget.id, 0, 100)])
        assert isinstance(holds, list)
        old = slow.stats()[budget.id]["lease_id"]
        clock.now += CONFIG.lease_ttl_seconds + 1  # no sync for a whole TTL
        await repository.forfeit_expired(clock.now)  # another process's sweep
        await slow.sync()
        await settle(slow, holds, 80)  # charged with the forfeit already
        fresh = await slow.reserve([Want(budget.id, 0, 100)])
        assert isinstance(fresh, list)
        assert slow.stats()[budget.id]["lease_id"] not in (0, old)
        state = await repository.get("key", "k")
        assert state is not None
        assert state.spent_nanos == 900  # the forfeited slice: 100 + 800 spare
    finally:
        await database.close()


@pytest.mark.parametrize("lease_ttl", [0.5, 2.0])
def test_lease_ttl_must_outlive_several_syncs(lease_ttl: float) -> None:
    if lease_ttl < 3 * 0.5:
        with pytest.raises(ValueError, match="lease_ttl_seconds"):
            BudgetsConfig(sync_interval_seconds=0.5, lease_ttl_seconds=lease_ttl)
    else:
        assert BudgetsConfig(sync_interval_seconds=0.5, lease_ttl_seconds=lease_ttl)


def test_settlements_survive_the_journal() -> None:
    record = UsageRecord(
        created_at=1.0,
        request_id="r",
        endpoint="chat.completions",
        model="m",
        latency_ms=2.0,
        status=200,
        settlements=(Settlement(3, 0, 150, 120, 9), Settlement(4, 86_400, 150, 120)),
    )
    assert UsageRecord.from_json(record.to_json()) == record
