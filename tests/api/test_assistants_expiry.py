"""Runs that wait: tool outputs that come too late, and runs queued behind a full pool."""

from __future__ import annotations

import openai
import pytest

from tests.assistants.support import (
    MODEL,
    WEATHER_TOOL,
    sdk,
    start_gateway,
    tool_call,
    wait_for_status,
)
from tests.fakes.openai_upstream import FakeOpenAI, Reply, Stall
from tests.fakes.server import PortwayServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXPIRY_SECONDS = 0.3


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server) -> PortwayServer:
    return start_gateway(
        start_portway,
        fake_openai_server,
        requires_action_expiry_seconds=EXPIRY_SECONDS,
        max_concurrent_runs=1,
    )


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


def test_run_waiting_too_long_for_tool_outputs_expires(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL, tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    fake_openai.script(Reply(tool_calls=[tool_call("call_w", "get_weather", '{"city": "X"}')]))
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action" and run.expires_at is not None

    expired = wait_for_status(client, thread.id, run.id, {"expired"}, timeout=5)

    assert expired.required_action is None and expired.usage is not None
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert step.status == "expired" and step.expired_at is not None
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_w", "output": "x"}]
        )


def test_queued_run_can_be_cancelled_before_it_starts(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    busy_thread = client.beta.threads.create(messages=[{"role": "user", "content": "Busy"}])
    waiting_thread = client.beta.threads.create(messages=[{"role": "user", "content": "Wait"}])
    fake_openai.script(Stall(after=2, seconds=1.5, reply=Reply(content="slow answer")))
    busy = client.beta.threads.runs.create(busy_thread.id, assistant_id=assistant.id)
    wait_for_status(client, busy_thread.id, busy.id, {"in_progress"})

    # The only worker slot is taken: this run stays queued.
    waiting = client.beta.threads.runs.create(waiting_thread.id, assistant_id=assistant.id)
    assert client.beta.threads.runs.retrieve(waiting.id, thread_id=waiting_thread.id).status == (
        "queued"
    )
    cancelled = client.beta.threads.runs.cancel(waiting.id, thread_id=waiting_thread.id)
    assert cancelled.status == "cancelled" and cancelled.started_at is None

    client.beta.threads.runs.cancel(busy.id, thread_id=busy_thread.id)
    assert client.beta.threads.runs.poll(busy.id, thread_id=busy_thread.id).status == "cancelled"
