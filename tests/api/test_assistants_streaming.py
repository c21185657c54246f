"""The assistant event stream, as the SDK's ``AssistantEventHandler`` and raw SSE see it."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest
from openai import AssistantEventHandler
from typing_extensions import override

from tests.assistants.support import (
    MODEL,
    TEAM_A_KEY,
    WEATHER_TOOL,
    sdk,
    start_gateway,
    tool_call,
    wait_for,
)
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The spec schema each event's data must match.
SCHEMA_OF_EVENT = {
    "thread.created": "ThreadObject",
    "thread.run.step.delta": "RunStepDeltaObject",
    "thread.message.delta": "MessageDeltaObject",
}


def schema_for(event: str) -> str:
    if event in SCHEMA_OF_EVENT:
        return SCHEMA_OF_EVENT[event]
    if event.startswith("thread.run.step."):
        return "RunStepObject"
    if event.startswith("thread.run."):
        return "RunObject"
    if event.startswith("thread.message."):
        return "MessageObject"
    raise AssertionError(f"unexpected event {event}")


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server) -> PortwayServer:
    return start_gateway(start_portway, fake_openai_server)


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


class Recorder(AssistantEventHandler):
    """Records the callbacks the SDK fires, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.text: list[str] = []
        self.done_texts: list[str] = []
        self.tool_calls: list[str] = []
        self.tool_argument_pieces: list[str] = []

    @override
    def on_event(self, event: Any) -> None:
        self.events.append(event.event)

    @override
    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.text.append(delta.value)

    @override
    def on_text_done(self, text: Any) -> None:
        self.done_texts.append(text.value)

    @override
    def on_tool_call_created(self, tool_call: Any) -> None:
        self.tool_calls.append(tool_call.id)

    @override
    def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
        if delta.function and delta.function.arguments:
            self.tool_argument_pieces.append(delta.function.arguments)


def test_event_handler_streams_a_text_answer(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    fake_openai.script(Reply(content="Hello, streaming world!"))
    handler = Recorder()

    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()

    assert handler.events == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        *["thread.message.delta"] * len(handler.text),
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert "".join(handler.text) == "Hello, streaming world!"
    assert handler.done_texts == ["Hello, streaming world!"]
    run = handler.get_final_run()
    assert run.status == "completed" and run.usage is not None
    (message,) = handler.get_final_messages()
    assert message.content[0].text.value == "Hello, streaming world!"
    stored = client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert stored.content[0].text.value == "Hello, streaming world!"


def test_streamed_tool_calls_then_streamed_outputs(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL, tools=[WEATHER_TOOL])
    arguments = '{"city": "Lisbon"}'
    fake_openai.script(
        Reply(tool_calls=[tool_call("call_lx", "get_weather", arguments)]),
        Reply(content="Warm in Lisbon."),
    )
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Weather in Lisbon?"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()

    assert handler.events[0] == "thread.created"
    assert handler.events[-1] == "thread.run.requires_action"
    assert handler.tool_calls == ["call_lx"]
    assert "".join(handler.tool_argument_pieces) == arguments
    run = handler.get_final_run()
    assert run.status == "requires_action"
    (step,) = handler.get_final_run_steps()
    assert step.step_details.tool_calls[0].function.arguments == arguments

    resumed = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=run.thread_id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": "call_lx", "output": "25C"}],
        event_handler=resumed,
    ) as stream:
        stream.until_done()

    assert resumed.events[:3] == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert resumed.events[-1] == "thread.run.completed"
    assert "".join(resumed.text) == "Warm in Lisbon."
    assert resumed.get_final_run().status == "completed"


def sse_events(response: httpx.Response) -> list[tuple[str, str]]:
    """(event, data) pairs of a raw event stream; each block has exactly those two lines."""
    blocks = response.read().decode().split("\n\n")
    assert blocks[-1] == ""
    pairs = []
    for block in blocks[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        pairs.append((event_line.removeprefix("event: "), data_line.removeprefix("data: ")))
    return pairs


def test_raw_event_stream_matches_the_spec(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL, tools=[WEATHER_TOOL])
    fake_openai.script(
        Reply(
            content="Checking.", tool_calls=[tool_call("call_1", "get_weather", '{"city":"Oslo"}')]
        )
    )
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/threads/runs",
        headers={"authorization": f"Bearer {TEAM_A_KEY}", "openai-beta": "assistants=v2"},
        json={
            "assistant_id": assistant.id,
            "stream": True,
            "thread": {"messages": [{"role": "user", "content": "Oslo?"}]},
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)

    assert events[-1] == ("done", "[DONE]")
    for name, data in events[:-1]:
        assert_matches(schema_for(name), orjson.loads(data))
    names = [name for name, _ in events]
    assert names[:3] == ["thread.created", "thread.run.created", "thread.run.queued"]
    # Text first, then the tool call in a step of its own, then the run waits.
    assert names.index("thread.message.completed") < names.index("thread.run.step.delta")
    assert names[-2] == "thread.run.requires_action"
    run = orjson.loads(events[-2][1])
    client.beta.threads.runs.cancel(run["id"], thread_id=run["thread_id"])


def test_a_failing_model_ends_the_stream_with_a_failed_run(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    fake_openai.script(Fail(status=503))
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/threads/{thread.id}/runs",
        headers={"authorization": f"Bearer {TEAM_A_KEY}"},
        json={"assistant_id": assistant.id, "stream": True},
    ) as response:
        events = sse_events(response)
    assert [name for name, _ in events][-2:] == ["thread.run.failed", "done"]
    failed = orjson.loads(events[-2][1])
    assert failed["last_error"]["code"] == "server_error"


def test_stream_errors_before_the_run_starts_are_plain_json(
    gateway: PortwayServer, client: openai.OpenAI
) -> None:
    thread = client.beta.threads.create()
    response = httpx.post(
        f"{gateway.base_url}/threads/{thread.id}/runs",
        headers={"authorization": f"Bearer {TEAM_A_KEY}"},
        json={"assistant_id": "asst_missing", "stream": True},
    )
    assert response.status_code == 404
    assert_matches("ErrorResponse", response.json())


def test_cancel_while_streaming(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tell me"}])
    fake_openai.script(Reply(content="a very slow story indeed", chunk_delay=1.0))
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                client.beta.threads.runs.cancel(stream.current_run.id, thread_id=thread.id)
                break
        stream.until_done()
    wait_for(lambda: handler.get_final_run().status == "cancelled")
    assert handler.events[-1] == "thread.run.cancelled"
    assert "thread.run.cancelling" in handler.events
    assert "thread.message.incomplete" in handler.events
