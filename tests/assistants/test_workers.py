"""Several Portway processes share one PostgreSQL queue of runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.assistants.support import MODEL, sdk, use_test_tenants, wait_for_status
from tests.conftest import fake_model
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.upstream import Action
from tests.storage import postgres_database

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Meeting:
    """Lets requests through only once ``parties`` of them are in flight together."""

    parties: int
    patience: float = 5.0
    arrived: int = 0
    everyone: asyncio.Event | None = None

    async def arrive(self) -> bool:
        if self.everyone is None:
            self.everyone = asyncio.Event()
        self.arrived += 1
        if self.arrived >= self.parties:
            self.everyone.set()
        try:
            await asyncio.wait_for(self.everyone.wait(), self.patience)
        except TimeoutError:
            return False
        return True


@dataclass
class Together(Action):
    meeting: Meeting
    reply: Reply = field(default_factory=Reply)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if not await self.meeting.arrive():
            return await Fail(status=500, message="no other worker came").respond(request, body)
        return await self.reply.respond(request, body)


async def test_two_processes_share_the_run_queue(start_portway, fake_openai: FakeOpenAI) -> None:
    async with postgres_database() as url:
        settings = {
            "models": [fake_model(MODEL, fake_openai.base_url)],
            "database_url": url,
            # One run at a time each: two runs in flight at once need both processes.
            "assistants": {"max_concurrent_runs": 1, "poll_interval_seconds": 0.05},
        }
        servers = [start_portway(settings), start_portway(settings)]
        try:
            for server in servers:
                use_test_tenants(server)
            meeting = Meeting(parties=2)
            fake_openai.script(Together(meeting), Together(meeting))
            client = sdk(servers[0])

            def run_two() -> list[Any]:
                assistant = client.beta.assistants.create(model=MODEL)
                started = []
                for text in ("first", "second"):
                    thread = client.beta.threads.create(
                        messages=[{"role": "user", "content": text}]
                    )
                    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
                    started.append((thread.id, run.id))
                return [
                    wait_for_status(client, thread_id, run_id, {"completed", "failed"})
                    for thread_id, run_id in started
                ]

            finished = await asyncio.to_thread(run_two)
        finally:
            for server in servers:
                server.stop()
    assert [run.status for run in finished] == ["completed", "completed"]
    assert meeting.arrived == 2
