"""Two replicas x two workers (`portway serve --workers 2`, four processes sharing one
PostgreSQL and one Redis) behind a round-robin load balancer: a budget is never overspent,
a key's rate limit holds across all of them, a circuit opened by one replica is honoured by
the other, and a background response survives the SIGKILL of the replica running it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import fake_model
from tests.fakes.balancer import RoundRobinBalancer
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.process import PortwayProcess
from tests.processes.support import create_key, eventually, rows

pytestmark = pytest.mark.slow

MASTER = "sk-master-cluster"
COST_PER_CALL = 12_000_000  # nano-USD: the fake upstream reports 7 + 5 tokens at 1000 USD / 1M
GROUP = f"guarded-{secrets.token_hex(4)}"  # its circuit state lives in the shared Redis


@pytest.fixture(scope="module")
def cluster(
    shared_database: str,
    redis_url: str,
    fake_openai_server: FakeOpenAI,
    backup_upstream: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RoundRobinBalancer, list[PortwayProcess]]]:
    directory = tmp_path_factory.mktemp("cluster")
    settings: dict[str, Any] = {
        "master_key": MASTER,
        "database_url": shared_database,
        "redis_url": redis_url,
        # Replicas sharing a database share the server key, as deployed.
        "server_key": secrets.token_hex(32),
        "log_level": "warning",
        "models": [
            fake_model(
                "fake-gpt", fake_openai_server.base_url, pricing={"input": 1000, "output": 1000}
            ),
            fake_model(GROUP, backup_upstream.base_url, priority=0),
            fake_model(GROUP, fake_openai_server.base_url, priority=1),
        ],
        "router": {
            GROUP: {
                "strategy": "priority",
                "retries": 1,
                "backoff": {"base": "5ms"},
                "breaker": {"consecutive_failures": 2, "cooldown": "120s"},
            }
        },
        # Short leases: a killed replica's background work is taken over within seconds.
        "assistants": {
            "poll_interval_seconds": 0.2,
            "lease_seconds": 2,
            "sweep_interval_seconds": 0.3,
        },
    }
    replicas: list[PortwayProcess] = []
    try:
        for index in range(2):
            (directory / str(index)).mkdir()
            replicas.append(PortwayProcess(settings, directory / str(index), workers=2))
        for replica in replicas:
            replica.start()
        balancer = RoundRobinBalancer([("127.0.0.1", r.port) for r in replicas]).start()
        yield balancer, replicas
        balancer.stop()
    finally:
        for replica in replicas:
            replica.stop()


async def _fire(url: str, key: str, count: int, model: str = "fake-gpt") -> list[httpx.Response]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(
        timeout=60, limits=limits, headers={"authorization": f"Bearer {key}"}
    ) as http:
        return await asyncio.gather(
            *(http.post(f"{url}/v1/chat/completions", json=body) for _ in range(count))
        )


async def test_a_budget_is_never_overspent(
    cluster: tuple[RoundRobinBalancer, list[PortwayProcess]],
    shared_database: str,
    fake_openai: FakeOpenAI,
) -> None:
    balancer, _ = cluster
    fake_openai.default = Reply(delay=0.02)  # keep calls in flight together
    key_id, key = create_key(balancer.url, MASTER, max_budget=0.6)  # room for 50 calls
    before = list(balancer.connections)

    responses = await _fire(balancer.url, key, 150)

    assert all(b > a for a, b in zip(before, balancer.connections, strict=True))  # both served
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert all(r.status_code == 429 for r in refused)
    assert {r.json()["error"]["code"] for r in refused} <= {"insufficient_quota"}
    assert 1 <= len(ok) <= 50
    query = "SELECT limit_nanos, spent_nanos, reserved_nanos FROM budgets WHERE subject = $1"

    async def settled() -> dict[str, Any]:
        (budget,) = await rows(shared_database, query, key_id)
        assert budget["spent_nanos"] + budget["reserved_nanos"] <= budget["limit_nanos"]
        return budget

    for _ in range(300):  # every worker commits its ledger and gives back its spare slice
        budget = await settled()
        if budget["reserved_nanos"] == 0 and budget["spent_nanos"] == len(ok) * COST_PER_CALL:
            break
        await asyncio.sleep(0.1)
    assert budget["spent_nanos"] == len(ok) * COST_PER_CALL
    assert budget["spent_nanos"] <= budget["limit_nanos"]


async def test_a_rate_limit_holds_across_replicas(
    cluster: tuple[RoundRobinBalancer, list[PortwayProcess]], fake_openai: FakeOpenAI
) -> None:
    balancer, _ = cluster
    _, key = create_key(balancer.url, MASTER, rpm=40)
    statuses = [r.status_code for r in await _fire(balancer.url, key, 100)]
    assert (statuses.count(200), statuses.count(429)) == (40, 60)


def _deployment_states(replica: PortwayProcess) -> dict[str, str]:
    report = httpx.get(f"{replica.url}/health/deployments", timeout=10).json()["data"]
    return {row["id"]: row["state"] for row in report}


def test_a_circuit_opened_by_one_replica_is_honoured_by_the_other(
    cluster: tuple[RoundRobinBalancer, list[PortwayProcess]],
    fake_openai: FakeOpenAI,
    backup: FakeOpenAI,
) -> None:
    _, (one, two) = cluster
    backup.default = Fail(500)
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {MASTER}"}
    for _ in range(20):  # each worker counts its own consecutive failures
        answer = httpx.post(f"{one.base_url}/chat/completions", json=body, headers=headers)
        assert answer.status_code == 200  # served by the second deployment
        if _deployment_states(one)[GROUP] == "open":
            break
    assert _deployment_states(one)[GROUP] == "open"
    failed = len(backup.requests)
    assert failed >= 2

    # The other replica's workers never saw a failure, yet keep off the open circuit.
    for _ in range(10):
        answer = httpx.post(f"{two.base_url}/chat/completions", json=body, headers=headers)
        assert answer.status_code == 200
        assert answer.headers["x-portway-deployment"] == f"{GROUP}#1"
    assert len(backup.requests) == failed
    assert _deployment_states(two)[GROUP] == "open"


async def test_a_background_response_survives_its_replica_being_killed(
    cluster: tuple[RoundRobinBalancer, list[PortwayProcess]],
    shared_database: str,
    fake_openai: FakeOpenAI,
) -> None:
    balancer, (one, two) = cluster
    fake_openai.default = Reply(content="done by the survivor", delay=3)
    headers = {"authorization": f"Bearer {MASTER}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        created = await http.post(
            f"{one.base_url}/responses",
            json={"model": "fake-gpt", "input": "work", "background": True},
        )
        assert created.status_code == 200, created.text
        response_id = created.json()["id"]
        eventually(lambda: len(fake_openai.requests) == 1, "the response never started")
        (row,) = await rows(
            shared_database, "SELECT status, owner FROM responses WHERE id = $1", response_id
        )
        owner_pid = int(row["owner"].split(":")[1])
        assert owner_pid in one.children()  # executing on the replica about to die
        fake_openai.default = Reply(content="done by the survivor")

        one.kill()  # the whole replica: supervisor and workers, no shutdown hooks

        polled: dict[str, Any] = {}
        for _ in range(300):  # through the balancer: only the survivor answers now
            try:
                answer = await http.get(f"{balancer.base_url}/responses/{response_id}")
            except httpx.TransportError:  # a connection the dying replica had accepted
                await asyncio.sleep(0.1)
                continue
            polled = answer.json()
            if polled["status"] in ("completed", "failed", "cancelled", "incomplete"):
                break
            await asyncio.sleep(0.1)
    assert polled["status"] == "completed", polled
    assert polled["output"][0]["content"][0]["text"] == "done by the survivor"
    assert len(fake_openai.requests) == 2  # started again once, by the other replica
    (row,) = await rows(shared_database, "SELECT owner FROM responses WHERE id = $1", response_id)
    assert row["owner"] is None or int(row["owner"].split(":")[1]) in two.children()
