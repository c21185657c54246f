"""A Portway process killed with SIGKILL while it holds a slice of a budget (a lease).

- Restarted with the same ledger journal: the rows it journaled are committed, their
  cost moves into the budget's spend, and the rest of its slice is freed: exact.
- Never coming back (its journal elsewhere): its lease expires, is charged in full (so
  nothing it may have spent escapes the limit) and the budget keeps serving the other
  process; when its journal does turn up, the unspent rest is refunded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from portway.accounting.pricing import nanos
from portway.store import Database
from portway.store.budgets import BudgetRepository, BudgetState
from portway.store.usage import UsageFilter, UsageRepository
from tests.accounting.test_two_processes import issue_key
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.process import PortwayProcess

pytestmark = pytest.mark.slow

MASTER = "sk-crash"
COST_PER_CALL = nanos(12 * 0.001)  # the fake upstream reports 7 + 5 tokens at $0.001


def settings(fake: FakeOpenAI, database_url: str, journal: Path, **budgets: Any) -> dict[str, Any]:
    return {
        "master_key": MASTER,
        "database_url": database_url,
        # Rows stay in the journal (not the database) until the process dies.
        "ledger": {"journal_dir": str(journal), "flush_interval_ms": 60_000, "max_batch": 10_000},
        "budgets": budgets,
        "models": [
            fake_model("fake-gpt", fake.base_url, pricing={"input": 1000.0, "output": 1000.0})
        ],
    }


async def call(process: PortwayProcess, key: str, count: int) -> list[int]:
    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    async with httpx.AsyncClient(timeout=30) as http:
        statuses = []
        for _ in range(count):
            response = await http.post(
                f"{process.base_url}/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {key}"},
            )
            statuses.append(response.status_code)
        return statuses


async def budget_and_leases(
    database_url: str, key_id: str
) -> tuple[BudgetState, list[dict[str, Any]], int]:
    """The key's budget, its lease rows and the cost the ledger holds for the key."""
    database = Database(database_url)
    await database.start()
    try:
        budgets = BudgetRepository(database)
        budget = await budgets.get("key", key_id)
        assert budget is not None
        leases = await budgets.leases(budget.id)
        [summary] = await UsageRepository(database).summary(UsageFilter(key_id=key_id))
    finally:
        await database.close()
    return budget, leases, int(summary["cost_nanos"])


async def test_a_restart_recovers_a_killed_process_lease_exactly(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path}/portway.db"
    config = settings(fake_openai, database_url, tmp_path / "journal")
    key_id, key = await issue_key(database_url, budget=1.0)
    first = PortwayProcess(config, tmp_path).start()
    try:
        assert await call(first, key, 5) == [200] * 5
        budget, leases, ledger_cost = await budget_and_leases(database_url, key_id)
        # Spend and rows are still only in the journal; the slice is leased.
        assert (budget.spent_nanos, ledger_cost) == (0, 0)
        assert len(leases) == 1 and leases[0]["amount_nanos"] >= 5 * COST_PER_CALL
    finally:
        first.kill()

    second = PortwayProcess(config, tmp_path).start()  # recovers the journal at start-up
    try:
        budget, leases, ledger_cost = await budget_and_leases(database_url, key_id)
        assert budget.spent_nanos == ledger_cost == 5 * COST_PER_CALL
        assert budget.reserved_nanos == 0 and leases == []
        assert await call(second, key, 1) == [200]
    finally:
        second.stop()
    budget, leases, ledger_cost = await budget_and_leases(database_url, key_id)
    assert budget.spent_nanos == ledger_cost == 6 * COST_PER_CALL
    assert budget.reserved_nanos == 0 and leases == []


async def test_an_expired_lease_is_charged_then_refunded_when_its_journal_returns(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path}/portway.db"
    quick = {"sync_interval_seconds": 0.2, "lease_ttl_seconds": 1.0}
    lost_config = settings(fake_openai, database_url, tmp_path / "lost-journal", **quick)
    key_id, key = await issue_key(database_url, budget=0.2)  # about 13 worst-case calls
    lost = PortwayProcess(lost_config, tmp_path).start()
    try:
        assert await call(lost, key, 2) == [200, 200]
        _budget, [lease], _cost = await budget_and_leases(database_url, key_id)
    finally:
        lost.kill()

    survivor_config = settings(fake_openai, database_url, tmp_path / "journal", **quick)
    survivor = PortwayProcess(survivor_config, tmp_path).start()
    try:
        # Within the TTL the dead slice is still reserved; past it, it is charged in full
        # and the survivor serves until the budget is really spent.
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            budget, leases, _cost = await budget_and_leases(database_url, key_id)
            if any(row["forfeited_at"] is not None for row in leases):
                break
            assert asyncio.get_running_loop().time() < deadline, "the lease never expired"
            await asyncio.sleep(0.2)
        assert budget.spent_nanos == lease["amount_nanos"]  # the whole slice
        statuses = await call(survivor, key, 20)
        assert statuses[0] == 200 and statuses[-1] == 429
        served = 2 + statuses.count(200)
    finally:
        survivor.stop()
    budget, _leases, _cost = await budget_and_leases(database_url, key_id)
    assert served * COST_PER_CALL <= budget.spent_nanos <= budget.limit_nanos

    # The lost process's journal comes back: its two rows are committed and what its
    # slice did not spend is refunded.
    returned = PortwayProcess(lost_config, tmp_path).start()
    try:
        budget, leases, ledger_cost = await budget_and_leases(database_url, key_id)
    finally:
        returned.stop()
    assert ledger_cost == served * COST_PER_CALL
    assert budget.spent_nanos == ledger_cost
    assert leases == [] and budget.reserved_nanos == 0
