"""Budget leases on SQLite and PostgreSQL: atomic claims, settlements, forfeits, periods."""

from __future__ import annotations

import asyncio
import time

from portway.periods import PeriodStarts, period_end, period_start
from portway.store import Database
from portway.store.budgets import BudgetRepository, LeaseSync, Settlement

TTL = 30.0
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z, a Tuesday


async def claim(
    budgets: BudgetRepository,
    budget_id: int,
    holder: str,
    need: int,
    want: int | None = None,
    *,
    lease_id: int | None = None,
    start: int = 0,
    now: float = NOW,
    ttl: float = TTL,
):  # type: ignore[no-untyped-def]
    return await budgets.claim(
        budget_id,
        holder,
        lease_id,
        need=need,
        want=need if want is None else want,
        period_start=start,
        ttl=ttl,
        now=now,
    )


async def test_concurrent_claims_never_exceed_the_limit(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("team", "red", limit_nanos=1000, period="total")
    results = await asyncio.gather(
        *(claim(budgets, budget.id, f"holder{i}", 100) for i in range(25))
    )
    assert [r.status for r in results].count("granted") == 10
    state = await budgets.get("team", "red")
    assert state is not None and state.reserved_nanos == 1000 and state.spent_nanos == 0
    leases = await budgets.leases(budget.id)
    assert sum(lease["amount_nanos"] for lease in leases) == 1000


async def test_a_claim_gets_spare_up_to_half_of_what_is_left(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("user", "alice", 1000, "total")
    first = await claim(budgets, budget.id, "a", need=100, want=900)
    assert (first.status, first.granted) == ("granted", 100 + 450)
    again = await claim(budgets, budget.id, "a", need=50, want=50, lease_id=first.lease_id)
    assert (again.lease_id, again.granted) == (first.lease_id, 50)
    refused = await claim(budgets, budget.id, "b", need=401)
    assert (refused.status, refused.available) == ("refused", 400)
    [lease] = await budgets.leases(budget.id)
    assert lease["amount_nanos"] == 600


async def test_settling_moves_the_cost_from_the_lease_to_spent(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("key", "k1", 1000, "total")
    granted = await claim(budgets, budget.id, "a", 400)
    await budgets.settle([Settlement(budget.id, 0, 400, 120, granted.lease_id)])
    state = await budgets.get("key", "k1")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (120, 280)
    assert (await claim(budgets, budget.id, "b", 600)).status == "granted"
    assert (await claim(budgets, budget.id, "b", 1)).status == "refused"


async def test_a_forfeited_lease_is_charged_in_full_and_refunded_once_recovered(
    database: Database,
) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("key", "k2", 1000, "total")
    dead = await claim(budgets, budget.id, "dead", 300, ttl=5)
    assert await budgets.forfeit_expired(now=NOW + 1) == 0  # not expired yet
    assert await budgets.forfeit_expired(now=NOW + 6) == 1
    state = await budgets.get("key", "k2")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (300, 0)
    assert (await claim(budgets, budget.id, "alive", 701, now=NOW + 7)).status == "refused"
    # The dead holder's journal turns up: its settlements were charged already ...
    await budgets.settle([Settlement(budget.id, 0, 100, 80, dead.lease_id)])
    state = await budgets.get("key", "k2")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (300, 0)
    # ... and once all of it is committed, what it did not spend comes back.
    assert await budgets.release_holders(["dead"]) == 1
    state = await budgets.get("key", "k2")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (80, 0)
    assert await budgets.leases(budget.id) == []


async def test_a_holder_that_lost_its_lease_gets_a_new_one(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("team", "t1", 1000, "total")
    old = await claim(budgets, budget.id, "slow", 100, ttl=5)
    await budgets.forfeit_expired(now=NOW + 10)
    probe = [LeaseSync(budget.id, old.lease_id)]  # type: ignore[arg-type]
    assert await budgets.sync("slow", probe, ttl=TTL, now=NOW + 11) == {old.lease_id}
    again = await claim(budgets, budget.id, "slow", 100, lease_id=old.lease_id, now=NOW + 11)
    assert again.status == "granted" and again.lease_id != old.lease_id
    state = await budgets.get("team", "t1")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (100, 100)


async def test_released_holders_give_their_leases_back_uncharged(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("key", "k3", 1000, "total")
    gone = await claim(budgets, budget.id, "gone", 200)
    await claim(budgets, budget.id, "stays", 300)
    await budgets.settle([Settlement(budget.id, 0, 200, 50, gone.lease_id)])
    assert await budgets.release_holders(["gone"]) == 1
    state = await budgets.get("key", "k3")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (50, 300)
    assert [lease["holder"] for lease in await budgets.leases(budget.id)] == ["stays"]


async def test_sync_renews_gives_back_drops_and_reports_lost_leases(database: Database) -> None:
    budgets = BudgetRepository(database)
    one = await budgets.set("key", "s1", 1000, "total")
    two = await budgets.set("key", "s2", 1000, "total")
    kept = await claim(budgets, one.id, "h", 400, ttl=5)
    dropped = await claim(budgets, two.id, "h", 300, ttl=5)
    lost = await budgets.sync(
        "h",
        [
            LeaseSync(one.id, kept.lease_id, give_back=150),  # type: ignore[arg-type]
            LeaseSync(two.id, dropped.lease_id, drop=True),  # type: ignore[arg-type]
            LeaseSync(two.id, 999_999),
        ],
        ttl=TTL,
        now=NOW + 4,
    )
    assert lost == {999_999}
    [lease] = await budgets.leases(one.id)
    assert lease["amount_nanos"] == 250 and lease["expires_at"] == NOW + 4 + TTL
    assert await budgets.leases(two.id) == []
    states = {s.subject: s for s in await budgets.list("key")}
    assert (states["s1"].reserved_nanos, states["s2"].reserved_nanos) == (250, 0)
    # Renewed: nothing expires at the old deadline.
    assert await budgets.forfeit_expired(now=NOW + 6) == 0


async def test_contention_is_reported_to_holders(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("team", "busy", 100, "total")
    await claim(budgets, budget.id, "a", 100)
    assert await budgets.contended([budget.id], since=NOW - 1) == frozenset()
    assert (await claim(budgets, budget.id, "b", 10, now=NOW + 1)).status == "refused"
    assert await budgets.contended([budget.id], since=NOW) == {budget.id}
    assert await budgets.contended([budget.id], since=NOW + 2) == frozenset()


async def test_a_new_period_resets_the_spend(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("user", "bob", 100, "daily")
    tuesday = period_start("daily", NOW)
    wednesday = tuesday + 86_400
    first = await claim(budgets, budget.id, "h", 100, start=tuesday)
    await budgets.settle([Settlement(budget.id, tuesday, 100, 100, first.lease_id)])
    assert (await claim(budgets, budget.id, "h", 1, start=tuesday)).status == "refused"
    second = await claim(budgets, budget.id, "h", 60, start=wednesday, now=NOW + 86_400)
    assert second.status == "granted"
    state = await budgets.get("user", "bob")
    assert state is not None
    assert (state.period_start, state.spent_nanos, state.reserved_nanos) == (wednesday, 0, 60)
    # A call reserved on Tuesday and settled on Wednesday belongs to Tuesday.
    await budgets.settle([Settlement(budget.id, tuesday, 10, 10, second.lease_id)])
    state = await budgets.get("user", "bob")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (0, 50)


async def test_reset_and_delete(database: Database) -> None:
    budgets = BudgetRepository(database)
    budget = await budgets.set("team", "ops", 1000, "total")
    now = time.time()  # reset sees the real clock
    live = await claim(budgets, budget.id, "live", 200, now=now)
    await claim(budgets, budget.id, "dead", 300, now=now - 60)  # expired 30 s ago
    await budgets.settle([Settlement(budget.id, 0, 200, 150, live.lease_id)])
    assert await budgets.reset("team", "ops")
    state = await budgets.get("team", "ops")
    assert state is not None and (state.spent_nanos, state.reserved_nanos) == (0, 50)
    assert await budgets.delete("team", "ops")
    assert await budgets.leases(budget.id) == []


def test_period_starts_are_utc_boundaries() -> None:
    moment = 1_700_000_000  # 2023-11-14T22:13:20Z, a Tuesday
    assert period_start("daily", moment) == 1_699_920_000  # 2023-11-14T00:00Z
    assert period_start("weekly", moment) == 1_699_833_600  # Monday 2023-11-13T00:00Z
    assert period_start("monthly", moment) == 1_698_796_800  # 2023-11-01T00:00Z
    assert period_start("total", moment) == 0


def test_cached_period_starts_roll_over_at_the_boundaries() -> None:
    starts = PeriodStarts()
    for period in ("daily", "weekly", "monthly", "total"):
        for moment in (NOW, NOW + 3 * 86_400, NOW + 17 * 86_400, NOW + 40 * 86_400):
            assert starts(period, moment) == period_start(period, moment)
    december = 1_701_388_800  # 2023-12-01T00:00Z
    assert period_end("monthly", period_start("monthly", NOW)) == december
    assert period_end("monthly", 1_701_388_800) == 1_704_067_200  # 2024-01-01T00:00Z
