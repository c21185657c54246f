"""Two `portway serve` processes sharing state: budgets and key limits hold.

Shared PostgreSQL and Redis, PostgreSQL alone, or one SQLite file: 200 concurrent
requests spread over both processes against one key's budget never spend past the
limit (budgets lease slices from the database; Redis plays no part in them), and with
Redis a key's RPM admits no more than the limit across both processes.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis

from portway.accounting.pricing import nanos, usd
from portway.keys.service import BudgetSpec, KeyService
from portway.store import Database
from portway.store.budgets import BudgetRepository
from portway.store.keys import KeyFields, KeyRepository
from portway.store.usage import UsageFilter, UsageRepository
from tests.conftest import fake_model, service_unavailable
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.process import PortwayProcess
from tests.storage import postgres_database

pytestmark = pytest.mark.slow

MASTER = "sk-two-processes"
REDIS_URL = "redis://127.0.0.1:6379/0"
PRICE_PER_TOKEN_USD = 0.001  # pricing input = output = 1000 USD / 1M tokens
COST_PER_CALL = 12 * PRICE_PER_TOKEN_USD  # the fake upstream reports 7 + 5 tokens


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except (redis.ConnectionError, OSError) as exc:
        service_unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    yield REDIS_URL


@pytest.fixture(scope="module")
async def shared_database() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


@pytest.fixture(scope="module", params=["postgresql+redis", "postgresql", "sqlite"])
def sharing(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def shared_state(
    sharing: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str | None]:
    """(database URL, Redis URL or None) for the sharing mode."""
    if sharing == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('shared-sqlite')}/portway.db", None
    database: str = request.getfixturevalue("shared_database")
    redis: str | None = request.getfixturevalue("redis_url") if "redis" in sharing else None
    return database, redis


@pytest.fixture(scope="module")
def processes(
    shared_state: tuple[str, str | None],
    fake_openai_server: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[PortwayProcess]]:
    directory = tmp_path_factory.mktemp("two-processes")
    database_url, redis_url = shared_state
    settings: dict[str, Any] = {
        "master_key": MASTER,
        "database_url": database_url,
        **({"redis_url": redis_url} if redis_url else {}),
        "models": [
            fake_model(
                "fake-gpt",
                fake_openai_server.base_url,
                pricing={"input": 1000.0, "output": 1000.0},
            )
        ],
    }
    started = [PortwayProcess(settings, directory).start() for _ in range(2)]
    yield started
    for process in started:
        process.stop()


async def issue_key(database_url: str, **fields: Any) -> tuple[str, str]:
    budget = fields.pop("budget", None)
    database = Database(database_url)
    await database.start()
    try:
        service = KeyService(KeyRepository(database), BudgetRepository(database))
        spec = BudgetSpec(nanos(budget), "total") if budget is not None else None
        record, secret = await service.create(
            KeyFields(name="t-" + secrets.token_hex(3), **fields), spec
        )
    finally:
        await database.close()
    return record.id, secret


def settle(processes: list[PortwayProcess], key_id: str) -> None:
    """Have every process commit its ledger and give back its spare budget slices."""
    for process in processes:
        with httpx.Client(headers={"authorization": f"Bearer {MASTER}"}) as http:
            assert http.get(f"{process.base_url}/admin/keys/{key_id}").status_code == 200


async def fire(processes: list[PortwayProcess], key: str, count: int) -> list[httpx.Response]:
    """``count`` concurrent chat calls, alternating between the processes."""
    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    headers = {"authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        return await asyncio.gather(
            *(
                http.post(
                    f"{processes[i % 2].base_url}/chat/completions", json=body, headers=headers
                )
                for i in range(count)
            )
        )


async def test_two_processes_never_overspend_a_budget(
    processes: list[PortwayProcess], shared_state: tuple[str, str | None], fake_openai: FakeOpenAI
) -> None:
    shared_database = shared_state[0]
    fake_openai.default = Reply(delay=0.02)  # keep calls in flight together
    limit_usd = 0.6  # room for at most 50 calls at their real cost
    key_id, secret = await issue_key(shared_database, budget=limit_usd)

    responses = await fire(processes, secret, 200)
    settle(processes, key_id)

    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert all(r.status_code == 429 for r in refused)
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
    assert 30 <= len(ok) <= 50
    database = Database(shared_database)
    await database.start()
    try:
        budget = await BudgetRepository(database).get("key", key_id)
        rows = await UsageRepository(database).summary(UsageFilter(key_id=key_id))
    finally:
        await database.close()
    assert budget is not None
    assert budget.reserved_nanos == 0
    assert budget.spent_nanos <= budget.limit_nanos
    assert usd(budget.spent_nanos) == pytest.approx(len(ok) * COST_PER_CALL)
    assert rows[0]["requests"] == 200
    assert rows[0]["cost_nanos"] == budget.spent_nanos


async def test_key_rpm_holds_across_processes(
    processes: list[PortwayProcess], shared_state: tuple[str, str | None], fake_openai: FakeOpenAI
) -> None:
    if shared_state[1] is None:
        pytest.skip("key limits are shared through Redis only")
    _key_id, secret = await issue_key(shared_state[0], rpm=40)
    responses = await fire(processes, secret, 100)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 40
    assert statuses.count(429) == 60
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "40"


async def test_revocation_reaches_every_process(
    processes: list[PortwayProcess], shared_state: tuple[str, str | None]
) -> None:
    key_id, secret = await issue_key(shared_state[0])
    assert all(r.status_code == 200 for r in await fire(processes, secret, 4))
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {MASTER}"}) as http:
        revoked = await http.post(f"{processes[0].base_url}/admin/keys/{key_id}/revoke")
    assert revoked.status_code == 200
    await asyncio.sleep(1.5)  # keys.cache_ttl_seconds defaults to 1 s
    assert [r.status_code for r in await fire(processes, secret, 4)] == [401] * 4
