"""Breaker state in Redis: atomic transitions, and two Portway servers sharing one circuit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from portway.routing.state_redis import RedisBreakerStore
from tests.conftest import service_unavailable
from tests.fakes.openai_upstream import Fail, Reply
from tests.fakes.server import free_port
from tests.routing.conftest import Gateway, deployment

REDIS_URL = "redis://127.0.0.1:6379/0"


def _require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError):
        service_unavailable(f"Redis is not reachable at {REDIS_URL}")


@pytest.fixture
async def stores() -> AsyncIterator[tuple[RedisBreakerStore, RedisBreakerStore]]:
    _require_redis()
    prefix = f"portway-test:{uuid.uuid4().hex}:"
    first, second = (
        RedisBreakerStore(REDIS_URL, prefix=prefix),
        RedisBreakerStore(REDIS_URL, prefix=prefix),
    )
    await first.start()
    await second.start()
    yield first, second
    await first._client.delete(*[k async for k in first._client.scan_iter(prefix + "*")] or ["-"])
    await first.close()
    await second.close()


async def test_transitions_are_shared_and_atomic(stores) -> None:
    first, second = stores
    now = time.time()
    assert await first.load(["d"]) == await second.load(["d"])
    assert await first.trip("d", now + 10, 0)
    assert not await second.trip("d", now + 99, 0)  # already open: the first trip wins
    [record] = await second.load(["d"])
    assert record.open and record.open_until == pytest.approx(now + 10) and record.generation == 1
    assert await second.claim_probe("d", ttl=5)
    assert not await first.claim_probe("d", ttl=5)
    assert (await first.load(["d"]))[0].probing
    await first.reopen("d", now + 20, 1)
    [record] = await second.load(["d"])
    assert (record.level, record.probing, record.generation) == (1, False, 2)
    await second.reset("d")
    [record] = await first.load(["d"])
    assert not record.open and record.generation == 3
    await first.throttle("d", now + 5)
    await second.throttle("d", now + 2)  # an earlier end never shortens a throttle
    assert (await second.load(["d"]))[0].throttled_until == pytest.approx(now + 5)


async def test_unreachable_redis_falls_back_to_local_state() -> None:
    store = RedisBreakerStore("redis://127.0.0.1:1/0")
    await store.start()
    assert await store.trip("d", time.time() + 10, 0)
    [record] = await store.load(["d"])
    assert record.open
    await store.close()


class PortwayProcess:
    """``python -m portway serve`` in a child process, with a client like ``Gateway``'s."""

    def __init__(self, config: dict[str, Any], tmp_path: Path) -> None:
        path = tmp_path / f"portway-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portway", "serve", "--config", str(path), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.gateway = Gateway.__new__(Gateway)
        self.gateway.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.gateway.http.get("/health/live").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"portway did not start: {self.process.stderr.read()!r}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.gateway.http.close()
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def two_processes(tmp_path: Path):
    started: list[PortwayProcess] = []

    def start(models: list[dict[str, Any]], router: dict[str, Any], **settings: Any) -> Gateway:
        database_url = f"sqlite:///{tmp_path}/portway-{len(started)}.db"
        config = {"models": models, "router": router, "database_url": database_url, **settings}
        process = PortwayProcess(config, tmp_path)
        started.append(process)
        return process.gateway

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def shared_name() -> Iterator[str]:
    """A model name of its own per run (breaker keys are per deployment), cleaned up after."""
    name = f"shared-{uuid.uuid4().hex[:8]}"
    yield name
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"portway:breaker:{{{name}*"))
    if keys:
        client.delete(*keys)


def test_two_servers_share_one_circuit(gateway_for, upstreams, shared_name) -> None:
    _share_one_circuit(gateway_for, upstreams, shared_name)


@pytest.mark.slow
def test_two_processes_share_one_circuit(two_processes, upstreams, shared_name) -> None:
    _share_one_circuit(two_processes, upstreams, shared_name)


def _share_one_circuit(start: Callable[..., Gateway], upstreams, name: str) -> None:
    _require_redis()
    primary, secondary = upstreams[0], upstreams[1]
    models = [
        deployment(name, primary, priority=0),
        deployment(name, secondary, priority=1),
    ]
    router = {
        name: {
            "strategy": "priority",
            "retries": 1,
            "backoff": {"base": "5ms"},
            "breaker": {"consecutive_failures": 2, "cooldown": "700ms"},
        }
    }
    one = start(models, router, redis_url=REDIS_URL)
    two = start(models, router, redis_url=REDIS_URL)
    assert one.http.get("/health/deployments").json()["store"] == "redis"

    primary.default = Fail(500)
    for _ in range(2):
        assert one.chat(name).headers["x-portway-deployment"] == f"{name}#1"
    assert one.health()[name]["state"] == "open"
    # The second server never saw a failure, yet honours the open circuit.
    assert two.health()[name]["state"] == "open"
    seen = len(primary.requests)
    for _ in range(3):
        assert two.chat(name).headers["x-portway-deployment"] == f"{name}#1"
    assert len(primary.requests) == seen

    # After the cooldown the second server's probe closes the circuit for both.
    primary.default = Reply(content="back")
    deadline = time.monotonic() + 5
    while two.health()[name]["state"] != "half_open" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert two.chat(name).headers["x-portway-deployment"] == name
    assert one.health()[name]["state"] == "closed"
    assert one.chat(name).headers["x-portway-deployment"] == name
