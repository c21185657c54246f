"""SIGTERM hands everything back at once: budget leases, and a background response in
progress (queued again, no lease), so another replica takes it without waiting for a
lease to lapse; the ledger is flushed. A draining replica claims no new work."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.process import PortwayProcess
from tests.processes.support import create_key, eventually, rows

pytestmark = pytest.mark.slow

MASTER = "sk-master-graceful"
# Long leases: nothing here may be freed by a lease lapsing, only by the shutdown.
LEASES = {"lease_seconds": 600, "poll_interval_seconds": 0.2, "sweep_interval_seconds": 0.5}


def _settings(database_url: str, upstream: FakeOpenAI, directory: Path) -> dict[str, Any]:
    return {
        "master_key": MASTER,
        "database_url": database_url,
        "ledger": {"journal_dir": str(directory / "journal")},
        "log_level": "warning",
        "models": [
            fake_model("fake-gpt", upstream.base_url, pricing={"input": 1000, "output": 1000})
        ],
        "assistants": LEASES,
        "budgets": {"lease_ttl_seconds": 600, "sync_interval_seconds": 1},
        # Still serving (readiness off) this long after SIGTERM.
        "server": {"unready_delay_seconds": 1.5},
    }


async def test_sigterm_releases_budget_and_response_leases(
    shared_database: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = _settings(shared_database, fake_openai, tmp_path)
    first = PortwayProcess(settings, tmp_path).start()
    try:
        key_id, key = create_key(first.url, MASTER, max_budget=10.0)
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=first.base_url, headers=headers) as http:
            chat = await http.post(
                "/chat/completions",
                json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert chat.status_code == 200, chat.text
            (budget,) = await rows(
                shared_database, "SELECT id FROM budgets WHERE subject = $1", key_id
            )
            live = "SELECT * FROM budget_leases WHERE budget_id = $1 AND forfeited_at IS NULL"
            assert await rows(shared_database, live, budget["id"])  # this process holds a slice
            fake_openai.default = Reply(content="finished elsewhere", delay=8)
            created = await http.post(
                "/responses", json={"model": "fake-gpt", "input": "work", "background": True}
            )
            assert created.status_code == 200, created.text
            response_id = created.json()["id"]
            eventually(lambda: len(fake_openai.requests) == 2, "the response never started")
            first.terminate()
            eventually(
                lambda: httpx.get(f"{first.url}/health/ready").status_code == 503, "still ready"
            )
            # Accepted while draining, but left in the queue for another replica.
            late = await http.post(
                "/responses", json={"model": "fake-gpt", "input": "late", "background": True}
            )
            assert late.status_code == 200, late.text
        assert first.wait(60) in (0, -signal.SIGTERM), first.log()
        assert len(fake_openai.requests) == 2
    finally:
        first.kill()

    assert await rows(shared_database, live, budget["id"]) == []
    (after,) = await rows(
        shared_database,
        "SELECT spent_nanos, reserved_nanos FROM budgets WHERE id = $1",
        budget["id"],
    )
    assert after["reserved_nanos"] == 0
    assert after["spent_nanos"] == 12_000_000  # 12 tokens at 1000 USD per million
    lease = "SELECT status, owner, lease_until FROM responses WHERE id = $1"
    (response,) = await rows(shared_database, lease, response_id)
    assert response == {"status": "queued", "owner": None, "lease_until": None}
    (never_claimed,) = await rows(shared_database, lease, late.json()["id"])
    assert never_claimed == {"status": "queued", "owner": None, "lease_until": None}
    usage = await rows(
        shared_database, "SELECT status FROM usage_records WHERE key_id = $1", key_id
    )
    assert {"status": 200} in usage

    # Another replica takes the queued response at once (no lease to wait for).
    fake_openai.default = Reply(content="finished elsewhere")
    second = PortwayProcess(settings, tmp_path).start()
    try:
        async with httpx.AsyncClient(base_url=second.base_url, headers=headers) as http:
            for queued in (response_id, late.json()["id"]):
                for _ in range(200):
                    polled = (await http.get(f"/responses/{queued}")).json()
                    if polled["status"] == "completed":
                        break
                    await asyncio.sleep(0.1)
                assert polled["status"] == "completed", polled
                assert polled["output"][0]["content"][0]["text"] == "finished elsewhere"
    finally:
        second.stop()
