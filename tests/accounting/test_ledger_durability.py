"""The ledger's durability guarantee, tested on real `portway serve` processes.

- ``durability: journal`` (default): every request whose response the client received in
  full has its row in the journal when the process is killed with SIGKILL; the next
  process to start commits those rows, exactly once.
- ``durability: commit``: such rows are already in the database at the kill.
- ``durability: batch``: rows older than the flush interval survive SIGKILL; rows of the
  last interval may be lost; a graceful shutdown (SIGTERM) writes them all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from portway.store import Database
from portway.store.usage import UsageFilter, UsageRepository
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.process import PortwayProcess
from tests.storage import sqlite_url

pytestmark = pytest.mark.slow


def settings(fake: FakeOpenAI, database_url: str, **ledger: Any) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "ledger": ledger,
        "models": [fake_model("fake-gpt", fake.base_url)],
    }


async def stored_rows(database_url: str) -> list[str]:
    database = Database(database_url)
    await database.start()
    try:
        rows = await UsageRepository(database).rows(UsageFilter(), limit=1_000_000)
    finally:
        await database.close()
    return [row["request_id"] for row in rows]


async def stored_request_ids(database_url: str) -> set[str]:
    return set(await stored_rows(database_url))


async def send(http: httpx.AsyncClient, request_id: str, stream: bool) -> bool:
    """True once the full response (for streams: ``[DONE]``) has arrived."""
    body: dict[str, Any] = {
        "model": "fake-gpt",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    }
    if stream:  # usage from the upstream: no token counting (and BPE loading) needed
        body["stream_options"] = {"include_usage": True}
    headers = {"x-request-id": request_id}
    if not stream:
        response = await http.post("/v1/chat/completions", json=body, headers=headers)
        return response.status_code == 200 and bool(response.json()["choices"])
    async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as reply:
        lines = [line async for line in reply.aiter_lines()]
    return reply.status_code == 200 and "data: [DONE]" in lines


async def load(server: PortwayProcess, seconds: float, workers: int = 8) -> list[str]:
    """Requests from several clients for ``seconds``; returns the acknowledged request ids."""
    acknowledged: list[str] = []
    stop = asyncio.Event()

    async def worker(index: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            count = 0
            while not stop.is_set():
                request_id = f"w{index}-{count}"
                count += 1
                try:
                    if await send(http, request_id, stream=index % 2 == 1):
                        acknowledged.append(request_id)
                except httpx.HTTPError:
                    return  # the server is gone

    tasks = [asyncio.create_task(worker(i)) for i in range(workers)]
    await asyncio.sleep(seconds)
    server.kill()
    stop.set()
    await asyncio.gather(*tasks)
    return acknowledged


async def test_journal_keeps_every_acknowledged_row_through_sigkill(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Reply(delay=0.005)
    database_url = sqlite_url(tmp_path)
    config = settings(fake_openai, database_url, flush_interval_ms=60_000)  # all in journal
    acknowledged = await load(PortwayProcess(config, tmp_path).start(), seconds=1.5)
    assert len(acknowledged) >= 20
    assert not set(acknowledged) <= await stored_request_ids(database_url)

    PortwayProcess(config, tmp_path).start().stop()  # recovers the journal at start-up
    stored = await stored_rows(database_url)
    assert set(acknowledged) <= set(stored)
    assert len(stored) == len(set(stored))  # exactly once


async def test_commit_mode_rows_are_in_the_database_at_the_kill(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Reply(delay=0.005)
    database_url = sqlite_url(tmp_path)
    server = PortwayProcess(settings(fake_openai, database_url, durability="commit"), tmp_path)
    acknowledged = await load(server.start(), seconds=1.5)
    assert len(acknowledged) >= 20
    assert set(acknowledged) <= await stored_request_ids(database_url)


async def test_batch_ledger_loses_at_most_the_last_interval(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    database_url = sqlite_url(tmp_path)
    config = settings(fake_openai, database_url, durability="batch", flush_interval_ms=100)
    server = PortwayProcess(config, tmp_path).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        sent = [f"b-{i}" for i in range(20)]
        assert all(await asyncio.gather(*(send(http, rid, stream=False) for rid in sent)))
        await asyncio.sleep(0.6)  # several flush intervals
        recent = [f"late-{i}" for i in range(5)]
        assert all(await asyncio.gather(*(send(http, rid, stream=False) for rid in recent)))
    server.kill()
    stored = await stored_request_ids(database_url)
    assert set(sent) <= stored  # older than the interval: durable


async def test_batch_rows_are_written_on_graceful_shutdown(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    database_url = sqlite_url(tmp_path)
    config = settings(fake_openai, database_url, durability="batch", flush_interval_ms=60_000)
    server = PortwayProcess(config, tmp_path).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        sent = [f"g-{i}" for i in range(10)]
        assert all(
            await asyncio.gather(
                *(send(http, rid, stream=i % 2 == 0) for i, rid in enumerate(sent))
            )
        )
    assert await stored_request_ids(database_url) == set()  # still queued: nothing written yet
    server.stop()
    assert await stored_request_ids(database_url) == set(sent)
