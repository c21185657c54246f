"""How much tool use a run may have, against a scripted fake upstream: bounded tool rounds,
capped tool outputs, bounded built-in arguments, forced file_search, unfinished calls."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import openai
import pytest
from aiohttp import web

from portway.assistants.builtin import ToolInvocation, ToolOutcome
from portway.assistants.context import ELIDED_OUTPUT
from portway.assistants.tools import CODE_MAX_CHARS, FILE_SEARCH_QUERY_MAX_CHARS
from portway.errors import UpstreamError
from tests.assistants.support import (
    WEATHER_TOOL,
    FakeFileSearch,
    sdk,
    start_gateway,
    tool_call,
    use_test_tenants,
)
from tests.conftest import fake_model
from tests.fakes.openai_upstream import Action, Cycle, Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MAX_ROUNDS = 3
MAX_MODEL_CALLS = 6
MAX_OUTPUT_CHARS = 300
FINAL_ANSWER = "Here is what I found."
FORCED_SEARCH = {"type": "function", "function": {"name": "file_search"}}


@dataclass
class AlwaysCallsTool(Action):
    """A model that calls ``name`` on every turn, unless the request says ``tool_choice:
    none`` (then it answers), as the tiny local model did."""

    name: str
    arguments: str
    calls: int = 0
    _ids: Iterator[int] = field(default_factory=itertools.count)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if body.get("tool_choice") == "none":
            return await Reply(content=FINAL_ANSWER).respond(request, body)
        self.calls += 1
        call = tool_call(f"call_{next(self._ids)}", self.name, self.arguments)
        return await Reply(tool_calls=[call]).respond(request, body)


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_gateway(
        start_portway,
        fake_openai_server,
        max_tool_rounds=MAX_ROUNDS,
        max_tool_output_chars=MAX_OUTPUT_CHARS,
        max_model_calls_per_run=MAX_MODEL_CALLS,
    )


@pytest.fixture(scope="module")
def small_window(start_portway, fake_openai_server: FakeOpenAI) -> PortwayServer:
    """A model with a 1024-token window, as small local models have."""
    server = start_portway(
        {
            "models": [fake_model("fake-small", fake_openai_server.base_url, context_window=1024)],
            "assistants": {"poll_after_ms": 10, "sweep_interval_seconds": 0.05},
        }
    )
    use_test_tenants(server)
    return server


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


@pytest.fixture
def search(gateway: PortwayServer) -> Iterator[FakeFileSearch]:
    fake = FakeFileSearch(
        {
            "capital": ("file-facts", "Paris is the capital of France. " * 40),
            "Which city is the capital of France?": ("file-facts", "Paris."),
        }
    )
    tools = gateway.app.state.services.builtin_tools
    previous = tools.get("file_search")
    tools["file_search"] = fake
    yield fake
    if previous is None:
        del tools["file_search"]
    else:
        tools["file_search"] = previous


def run_messages(client: openai.OpenAI, thread_id: str, run_id: str) -> list[str]:
    return [
        part.text.value
        for message in client.beta.threads.messages.list(thread_id, run_id=run_id).data
        for part in message.content
        if part.type == "text"
    ]


def test_a_model_that_always_calls_a_tool_ends_with_a_message(
    client: openai.OpenAI, fake_openai: FakeOpenAI, search: FakeFileSearch
) -> None:
    fake_openai.default = loop = AlwaysCallsTool("file_search", '{"query": "capital"}')
    assistant = client.beta.assistants.create(model="fake-gpt", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Capital?"}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "file_search"}
    )

    assert run.status == "completed", run.last_error
    choices = [request.body["tool_choice"] for request in fake_openai.requests]
    # Forced until a tool was called, then free, and after the bound no tools at all.
    assert choices == [FORCED_SEARCH, "auto", "auto", "none"]
    assert loop.calls == MAX_ROUNDS and len(search.invocations) == MAX_ROUNDS
    assert run_messages(client, thread.id, run.id) == [FINAL_ANSWER]
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [step.type for step in steps] == ["tool_calls"] * MAX_ROUNDS + ["message_creation"]


def test_function_tool_rounds_are_bounded_too(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    """A client answering every call keeps the run in a requires_action loop no longer."""
    fake_openai.default = AlwaysCallsTool("get_weather", '{"city": "Paris"}')
    assistant = client.beta.assistants.create(model="fake-gpt", tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice="required"
    )
    for _ in range(MAX_ROUNDS):
        assert run.status == "requires_action", run.last_error
        (call,) = run.required_action.submit_tool_outputs.tool_calls
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "Sunny."}],
        )

    assert run.status == "completed", run.last_error
    choices = [request.body["tool_choice"] for request in fake_openai.requests]
    assert choices == ["required", "auto", "auto", "none"]
    assert run_messages(client, thread.id, run.id) == [FINAL_ANSWER]


def test_tool_outputs_enter_the_prompt_capped(
    client: openai.OpenAI, fake_openai: FakeOpenAI, search: FakeFileSearch
) -> None:
    assistant = client.beta.assistants.create(
        model="fake-gpt", tools=[{"type": "file_search"}, WEATHER_TOOL]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Capital?"}])
    long_weather = "Sunny and warm. " * 100
    fake_openai.script(
        Reply(tool_calls=[tool_call("call_fs", "file_search", '{"query": "capital"}')]),
        Reply(tool_calls=[tool_call("call_w", "get_weather", '{"city": "Paris"}')]),
        Reply(content="Paris [1]."),
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action", run.last_error
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": "call_w", "output": long_weather}],
    )
    assert run.status == "completed", run.last_error

    sent = {
        message["tool_call_id"]: message["content"]
        for message in fake_openai.requests[-1].body["messages"]
        if message["role"] == "tool"
    }
    searched = "[1] " + "Paris is the capital of France. " * 40
    for call_id, whole in (("call_fs", searched), ("call_w", long_weather)):
        omitted = len(whole) - MAX_OUTPUT_CHARS
        assert sent[call_id] == (
            f"{whole[:MAX_OUTPUT_CHARS]}\n[tool output cut: {omitted} more characters not shown]"
        )
    # The run's steps keep the whole outputs.
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert steps[1].step_details.tool_calls[0].function.output == long_weather


def test_builtin_tool_arguments_are_bounded_in_their_schema(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(
        model="fake-gpt", tools=[{"type": "file_search"}, {"type": "code_interpreter"}]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    fake_openai.script(Reply(content="Hello."))
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error

    tools = {t["function"]["name"]: t["function"] for t in fake_openai.requests[-1].body["tools"]}
    query = tools["file_search"]["parameters"]["properties"]["query"]
    code = tools["code_interpreter"]["parameters"]["properties"]["code"]
    assert (query["minLength"], query["maxLength"]) == (1, FILE_SEARCH_QUERY_MAX_CHARS)
    assert (code["minLength"], code["maxLength"]) == (1, CODE_MAX_CHARS)
    assert tools["file_search"]["parameters"]["required"] == ["query"]
    assert tools["code_interpreter"]["parameters"]["required"] == ["code"]


def test_forced_file_search_always_searches(
    client: openai.OpenAI, fake_openai: FakeOpenAI, search: FakeFileSearch
) -> None:
    """A model that ignores tool_choice {type: file_search}: the search runs anyway."""
    assistant = client.beta.assistants.create(model="fake-gpt", tools=[{"type": "file_search"}])
    question = "Which city is the capital of France?"
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    fake_openai.script(Reply(content="I know this one: Lyon."), Reply(content="Paris [1]."))

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "file_search"}
    )

    assert run.status == "completed", run.last_error
    (invocation,) = search.invocations
    assert invocation.arguments == {"query": question}
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [step.type for step in steps] == ["tool_calls", "message_creation"]
    (call,) = steps[0].step_details.tool_calls
    assert call.type == "file_search"
    # The answer that skipped the forced search is not shown; the one after it is.
    assert run_messages(client, thread.id, run.id) == ["Paris [1]."]
    assert fake_openai.requests[-1].body["messages"][-1]["content"] == "[1] Paris."


UNFINISHED_CALL = '{"name": "file_search", "arguments":{"query": "{user_id}:27998-27999-28000'


@pytest.mark.parametrize(
    "reply",
    [
        # What the local model used to send: the unfinished call as text.
        Reply(content=UNFINISHED_CALL, finish_reason="length", completion_tokens=256),
        # What OpenAI (and now the local model) sends: the call with partial arguments.
        Reply(
            tool_calls=[tool_call("call_cut", "file_search", '{"query": "{user_id}:27998-')],
            finish_reason="length",
            completion_tokens=256,
        ),
    ],
    ids=["as-text", "as-partial-call"],
)
def test_an_unfinished_tool_call_is_never_message_text(
    client: openai.OpenAI, fake_openai: FakeOpenAI, search: FakeFileSearch, reply: Reply
) -> None:
    assistant = client.beta.assistants.create(model="fake-gpt", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Find user ids"}])
    fake_openai.script(reply)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "file_search"},
        max_completion_tokens=256,
    )

    assert run.status == "incomplete", run.last_error
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert client.beta.threads.messages.list(thread.id, run_id=run.id).data == []
    assert search.invocations == []  # a cut call is not run
    for step in client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data:
        assert step.type == "tool_calls" and step.status == "cancelled"


class BrokenSearch:
    """A file_search that raises ``error``."""

    type: ClassVar[str] = "file_search"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def invoke(self, invocation: ToolInvocation) -> ToolOutcome:
        raise self.error


SEARCH_CALL = Reply(tool_calls=[tool_call("call_fs", "file_search", '{"query": "capital"}')])


@pytest.mark.parametrize(
    ("tool", "upstream", "code"),
    [
        (BrokenSearch(RuntimeError("boom")), SEARCH_CALL, "server_error"),
        (BrokenSearch(UpstreamError("")), SEARCH_CALL, "server_error"),
        (None, Fail(status=500, message=""), "server_error"),
        # An upstream that ignores tool_choice "none" and calls tools forever.
        (FakeFileSearch({"capital": ("file-a", "Paris.")}), Cycle([SEARCH_CALL]), "server_error"),
    ],
    ids=["tool-raises", "tool-error-without-message", "model-error-without-message", "endless"],
)
def test_every_failed_run_says_why(
    gateway: PortwayServer,
    client: openai.OpenAI,
    fake_openai: FakeOpenAI,
    tool: object,
    upstream: Action,
    code: str,
) -> None:
    tools = gateway.app.state.services.builtin_tools
    installed = tools.pop("file_search", None)
    if tool is not None:
        tools["file_search"] = tool
    fake_openai.default = upstream
    try:
        assistant = client.beta.assistants.create(model="fake-gpt", tools=[{"type": "file_search"}])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Capital?"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
    finally:
        tools.pop("file_search", None)
        if installed is not None:
            tools["file_search"] = installed

    assert run.status == "failed"
    assert run.last_error is not None and run.last_error.code == code
    assert run.last_error.message.strip()
    for step in client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data:
        if step.status == "failed":
            assert step.last_error is not None and step.last_error.message.strip()


def test_earlier_tool_outputs_make_way_when_the_run_outgrows_the_window(
    small_window: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    client = sdk(small_window)
    excerpt = "Paris is the capital of France. " * 40  # about 300 tokens, under the cap
    small_window.app.state.services.builtin_tools["file_search"] = FakeFileSearch(
        {"capital": ("file-facts", excerpt)}
    )
    try:
        assistant = client.beta.assistants.create(
            model="fake-small", tools=[{"type": "file_search"}]
        )
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Capital?"}])
        fake_openai.script(SEARCH_CALL, SEARCH_CALL, SEARCH_CALL, Reply(content="Paris."))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
    finally:
        del small_window.app.state.services.builtin_tools["file_search"]

    assert run.status == "completed", run.last_error
    outputs = [
        [m["content"] for m in request.body["messages"] if m["role"] == "tool"]
        for request in fake_openai.requests
    ]
    # One output fits the prompt room (1024 - 512 for the answer); two do not: the
    # newest round's stays whole, earlier ones are left out.
    assert outputs[1] == [f"[1] {excerpt}"]
    assert outputs[2] == [ELIDED_OUTPUT, f"[2] {excerpt}"]
    assert outputs[3] == [ELIDED_OUTPUT, ELIDED_OUTPUT, f"[3] {excerpt}"]
    # The user's question is never dropped.
    assert all(
        r.body["messages"][0] == {"role": "user", "content": "Capital?"}
        for r in fake_openai.requests
    )
