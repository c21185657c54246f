"""Background responses: queued, executed by the workers, polled, cancelled, their stream
resumed with ``starting_after``, and recovered after a restart (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from portway.store import Database
from portway.store.responses import ResponseStore
from tests.assistants.support import (
    MODEL,
    TEAM_B_KEY,
    sdk,
    start_gateway,
    use_test_tenants,
    wait_for,
)
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply, Stall
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import call, check_stream, sse_events, types_of

TERMINAL = {"completed", "failed", "cancelled", "incomplete"}


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_gateway(start_portway, fake_openai_server)


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


def finished(client: openai.OpenAI, response_id: str, timeout: float = 10.0) -> Any:
    def done() -> Any:
        response = client.responses.retrieve(response_id)
        return response if response.status in TERMINAL else None

    return wait_for(done, timeout=timeout)


def test_background_response_is_queued_then_completes(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="Done in the background.", prompt_tokens=9))
    queued = call(
        gateway,
        "POST",
        "/responses",
        json={"model": MODEL, "input": "Work on this.", "background": True},
    )
    assert queued.status_code == 200, queued.text
    body = queued.json()
    assert_matches("Response", body)
    assert body["status"] == "queued" and body["background"] is True
    assert "openai-poll-after-ms" in queued.headers

    final = finished(client, body["id"])
    assert final.status == "completed"
    assert final.output_text == "Done in the background."
    assert final.usage is not None and final.usage.input_tokens == 9
    assert_matches("Response", call(gateway, "GET", f"/responses/{body['id']}").json())
    items = client.responses.input_items.list(body["id"])
    assert [item.content[0].text for item in items.data] == ["Work on this."]  # type: ignore[union-attr]
    assert call(gateway, "GET", f"/responses/{body['id']}", key=TEAM_B_KEY).status_code == 404


def test_background_needs_store(gateway: PortwayServer) -> None:
    response = call(
        gateway,
        "POST",
        "/responses",
        json={"model": MODEL, "input": "x", "background": True, "store": False},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "background"


def test_cancel_a_background_response(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Stall(after=2, seconds=3, reply=Reply(content="never finished")))
    response = client.responses.create(model=MODEL, input="slow", background=True)
    wait_for(lambda: fake_openai.requests)  # the worker is calling the model
    cancelled = client.responses.cancel(response.id)
    assert cancelled.status == "cancelled"
    assert_matches("Response", call(gateway, "GET", f"/responses/{response.id}").json())
    assert client.responses.retrieve(response.id).status == "cancelled"
    again = client.responses.cancel(response.id)  # idempotent
    assert again.status == "cancelled"


def test_a_foreground_response_cannot_be_cancelled(
    gateway: PortwayServer, client: openai.OpenAI
) -> None:
    response = client.responses.create(model=MODEL, input="quick")
    refused = call(gateway, "POST", f"/responses/{response.id}/cancel")
    assert refused.status_code == 400
    assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
    assert call(gateway, "POST", "/responses/resp_nope/cancel").status_code == 404


def test_a_running_background_response_shows_its_output_so_far(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Stall(after=2, seconds=3, reply=Reply(content="partial answer here")))
    response = client.responses.create(model=MODEL, input="slow", background=True)

    def started() -> Any:
        # The message item is added before its first text part (as OpenAI streams it):
        # wait for some text.
        body = call(gateway, "GET", f"/responses/{response.id}").json()
        return body if body["output"] and body["output"][0].get("content") else None

    body = wait_for(started)
    assert body["status"] == "in_progress"
    assert_matches("Response", body)
    (item,) = body["output"]
    assert (item["type"], item["status"], item["role"]) == ("message", "in_progress", "assistant")
    assert item["content"][0]["type"] == "output_text"
    assert "partial answer here".startswith(item["content"][0]["text"])
    assert client.responses.cancel(response.id).status == "cancelled"


def test_background_stream_and_resume_with_starting_after(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="one two three four five six"))
    streamed = call(
        gateway,
        "POST",
        "/responses",
        json={"model": MODEL, "input": "count", "background": True, "stream": True},
    )
    events = sse_events(streamed)
    check_stream(events)
    assert types_of(events)[0] == "response.created" and events[-1]["type"] == "response.completed"
    response_id = events[0]["response"]["id"]

    resumed = call(gateway, "GET", f"/responses/{response_id}?stream=true&starting_after=3")
    assert resumed.status_code == 200
    rest = sse_events(resumed)
    assert rest == events[4:]

    with client.responses.retrieve(response_id, stream=True, starting_after=len(events) - 2) as s:
        tail = [event.type for event in s]
    assert tail == ["response.completed"]

    foreground = client.responses.create(model=MODEL, input="x")
    refused = call(gateway, "GET", f"/responses/{foreground.id}?stream=true")
    assert refused.status_code == 400
    bad = call(gateway, "GET", f"/responses/{response_id}?stream=true&starting_after=x")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "starting_after"


def test_a_background_response_survives_a_restart(
    start_portway, fake_openai: FakeOpenAI, database_url: str
) -> None:
    settings = {
        "models": [fake_model(MODEL, fake_openai.base_url)],
        "database_url": database_url,
        "assistants": {"poll_after_ms": 10, "sweep_interval_seconds": 0.05},
        "router": {"*": {"retries": 0}},
    }
    first = start_portway(settings)
    use_test_tenants(first)
    # The model starts answering, then hangs: the response is mid-answer at the restart.
    fake_openai.script(Stall(after=2, seconds=3, reply=Reply(content="half")))
    response = sdk(first).responses.create(model=MODEL, input="story", background=True)
    wait_for(
        lambda: call(first, "GET", f"/responses/{response.id}").json()["status"] == "in_progress"
    )
    first.stop()

    fake_openai.script(Reply(content="the whole story"))
    second = start_portway(settings)
    use_test_tenants(second)
    try:
        final = finished(sdk(second), response.id, timeout=20)
        assert final.status == "completed"
        assert final.output_text == "the whole story"
        events = sse_events(call(second, "GET", f"/responses/{response.id}?stream=true"))
        check_stream(events)  # the interrupted attempt's events were replaced, numbered from 0
        assert events[-1]["type"] == "response.completed"
        # A clean stop hands the response back without spending one of its attempts.
        assert asyncio.run(_attempts(database_url, response.id)) == 1
    finally:
        second.stop()


async def _attempts(database_url: str, response_id: str) -> int:
    database = Database(database_url)
    await database.start()
    try:
        row = await ResponseStore(database).get_by_id(response_id)
        assert row is not None
        return row.attempts
    finally:
        await database.close()


async def _interrupt(database_url: str, response_id: str, attempts: int) -> None:
    """Make ``response_id`` look like a dead server's: in progress, lease lapsed."""
    database = Database(database_url)
    await database.start()
    try:
        store = ResponseStore(database)
        changes = {
            "status": "in_progress",
            "owner": "dead-worker",
            "lease_until": time.time() - 60,
            "attempts": attempts,
        }
        assert await store.update_response(response_id, changes) is not None
    finally:
        await database.close()


def test_lapsed_responses_are_resumed_or_failed(
    start_portway, fake_openai: FakeOpenAI, database_url: str
) -> None:
    settings = {
        "models": [fake_model(MODEL, fake_openai.base_url)],
        "database_url": database_url,
        "assistants": {"max_attempts": 2, "sweep_interval_seconds": 0.05},
    }
    first = start_portway(settings)
    use_test_tenants(first)
    client = sdk(first)
    resume = client.responses.create(model=MODEL, input="resume me", background=True)
    exhausted = client.responses.create(model=MODEL, input="give up", background=True)
    for response_id in (resume.id, exhausted.id):
        finished(client, response_id)
    first.stop()
    asyncio.run(_interrupt(database_url, resume.id, attempts=1))
    asyncio.run(_interrupt(database_url, exhausted.id, attempts=2))

    fake_openai.script(Reply(content="resumed"))
    second = start_portway(settings)
    use_test_tenants(second)
    try:
        client = sdk(second)
        assert finished(client, resume.id).output_text == "resumed"
        failed = finished(client, exhausted.id)
        assert failed.status == "failed"
        assert failed.error is not None and failed.error.code == "server_error"
    finally:
        second.stop()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_processes_share_the_queue_on_postgresql(
    start_portway, fake_openai: FakeOpenAI, database_url: str
) -> None:
    settings = {
        "models": [fake_model(MODEL, fake_openai.base_url)],
        "database_url": database_url,
        "assistants": {"poll_interval_seconds": 0.05},
    }
    servers = [start_portway(settings), start_portway(settings)]
    for server in servers:
        use_test_tenants(server)
    fake_openai.default = Reply(content="shared", chunk_delay=0.01)
    try:
        ids = [
            sdk(servers[n % 2]).responses.create(model=MODEL, input=f"job {n}", background=True).id
            for n in range(12)
        ]
        results = [finished(sdk(servers[0]), response_id, timeout=30) for response_id in ids]
        assert {result.status for result in results} == {"completed"}
        # Each response was executed exactly once, whichever process claimed it.
        asked = [r.body["messages"][-1]["content"] for r in fake_openai.requests]
        assert sorted(asked) == sorted(f"job {n}" for n in range(12))
    finally:
        for server in servers:
            server.stop()


def test_a_background_response_extends_its_conversation_when_done(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    conversation = client.conversations.create()
    fake_openai.script(Reply(content="Background hello."))
    response = client.responses.create(
        model=MODEL, conversation=conversation.id, input="Hi", background=True
    )
    assert finished(client, response.id).status == "completed"
    items = client.conversations.items.list(conversation.id, order="asc").data
    texts = [item.content[0].text for item in items]  # type: ignore[union-attr]
    assert texts == ["Hi", "Background hello."]
