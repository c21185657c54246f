"""Runs through the official SDK against a scripted fake upstream: the whole lifecycle."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.assistants.support import (
    MODEL,
    TEAM_A_KEY,
    WEATHER_TOOL,
    FakeCodeInterpreter,
    FakeFileSearch,
    sdk,
    start_gateway,
    tool_call,
    wait_for,
)
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server) -> PortwayServer:
    return start_gateway(start_portway, fake_openai_server)


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


def get_json(gateway: PortwayServer, path: str) -> dict:
    response = httpx.get(
        f"{gateway.base_url}{path}", headers={"authorization": f"Bearer {TEAM_A_KEY}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def chat_messages(fake: FakeOpenAI) -> list[dict]:
    return fake.requests[-1].body["messages"]


def test_run_completes_and_matches_the_spec(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL, instructions="Be brief.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello?"}])
    fake_openai.script(Reply(content="Hi there.", prompt_tokens=11, completion_tokens=3))

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, metadata={"job": "greet"}
    )

    assert run.status == "completed"
    assert run.usage is not None
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (11, 3)
    assert run.usage.total_tokens == 14
    assert run.started_at is not None and run.completed_at is not None
    assert run.metadata == {"job": "greet"} and run.instructions == "Be brief."
    body = get_json(gateway, f"/threads/{thread.id}/runs/{run.id}")
    assert_matches("RunObject", body)
    assert body["truncation_strategy"] == {"type": "auto", "last_messages": None}
    assert chat_messages(fake_openai) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello?"},
    ]
    assert fake_openai.requests[-1].body["model"] == f"upstream-{MODEL}"

    messages = get_json(gateway, f"/threads/{thread.id}/messages?run_id={run.id}")
    assert_matches("ListMessagesResponse", messages)
    (answer,) = messages["data"]
    assert answer["role"] == "assistant" and answer["status"] == "completed"
    assert answer["content"][0]["text"]["value"] == "Hi there."
    assert (answer["assistant_id"], answer["run_id"]) == (assistant.id, run.id)

    steps = get_json(gateway, f"/threads/{thread.id}/runs/{run.id}/steps")
    assert_matches("ListRunStepsResponse", steps)
    (step,) = steps["data"]
    assert step["type"] == "message_creation" and step["status"] == "completed"
    assert step["step_details"]["message_creation"]["message_id"] == answer["id"]
    assert step["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    one = client.beta.threads.runs.steps.retrieve(step["id"], thread_id=thread.id, run_id=run.id)
    assert one.id == step["id"]

    runs = get_json(gateway, f"/threads/{thread.id}/runs")
    assert_matches("ListRunsResponse", runs)
    assert [r["id"] for r in runs["data"]] == [run.id]
    updated = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"a": "b"})
    assert updated.metadata == {"a": "b"}


def test_function_tool_round_trip(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL, tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Weather in Paris and Rome?"}]
    )
    calls = [
        tool_call("call_paris", "get_weather", '{"city": "Paris"}'),
        tool_call("call_rome", "get_weather", '{"city": "Rome"}'),
    ]
    fake_openai.script(Reply(tool_calls=calls), Reply(content="Sunny in both."))

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "requires_action"
    assert run.expires_at is not None and run.usage is None
    assert_matches("RunObject", get_json(gateway, f"/threads/{thread.id}/runs/{run.id}"))
    required = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in required] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls
    ]
    assert fake_openai.requests[-1].body["tools"] == [WEATHER_TOOL]

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[
            {"tool_call_id": "call_rome", "output": "22C"},
            {"tool_call_id": "call_paris", "output": "18C"},
        ],
    )

    assert run.status == "completed" and run.required_action is None
    assert run.usage.prompt_tokens == 2 * Reply().prompt_tokens
    resumed = chat_messages(fake_openai)
    assert resumed[-3]["tool_calls"] == calls
    assert resumed[-2:] == [
        {"role": "tool", "tool_call_id": "call_paris", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_rome", "content": "22C"},
    ]
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    outputs = {c.id: c.function.output for c in steps[0].step_details.tool_calls}
    assert outputs == {"call_paris": "18C", "call_rome": "22C"}
    assert all(s.status == "completed" for s in steps)


def test_tool_outputs_must_answer_exactly_the_calls(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL, tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    fake_openai.script(
        Reply(
            tool_calls=[
                tool_call("call_a", "get_weather", '{"city": "A"}'),
                tool_call("call_b", "get_weather", '{"city": "B"}'),
            ]
        )
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"

    bad_outputs = [
        [{"tool_call_id": "call_a", "output": "x"}],
        [
            {"tool_call_id": "call_a", "output": "x"},
            {"tool_call_id": "call_b", "output": "y"},
            {"tool_call_id": "call_zzz", "output": "z"},
        ],
        [{"tool_call_id": "call_a", "output": "x"}, {"tool_call_id": "call_a", "output": "x"}],
    ]
    for outputs in bad_outputs:
        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.submit_tool_outputs(
                run.id, thread_id=thread.id, tool_outputs=outputs
            )
    still = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert still.status == "requires_action"

    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert step.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run.id,
            thread_id=thread.id,
            tool_outputs=[
                {"tool_call_id": "call_a", "output": "x"},
                {"tool_call_id": "call_b", "output": "y"},
            ],
        )
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_cancel_a_running_run_keeps_the_partial_answer(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Talk."}])
    fake_openai.script(Reply(content="A long story, told slowly", chunk_delay=1.0))
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)

    def answer_started() -> bool:
        data = client.beta.threads.messages.list(thread.id, run_id=run.id).data
        return bool(data)

    wait_for(answer_started)
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(thread.id, role="user", content="more")
    assert "active" in caught.value.message

    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status in ("cancelling", "cancelled")
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert final.status == "cancelled" and final.cancelled_at is not None
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert message.status == "incomplete"
    assert message.incomplete_details.reason == "run_cancelled"
    assert "A long story, told slowly".startswith(message.content[0].text.value)
    assert message.content[0].text.value
    wait_for(lambda: fake_openai.disconnects >= 1)
    # The thread accepts messages again.
    client.beta.threads.messages.create(thread.id, role="user", content="ok")


def test_truncation_last_messages(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": f"message {i}"} for i in range(5)]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
    )
    assert run.status == "completed"
    assert run.truncation_strategy.type == "last_messages"
    assert chat_messages(fake_openai) == [
        {"role": "user", "content": "message 3"},
        {"role": "user", "content": "message 4"},
    ]


def test_auto_truncation_fits_max_prompt_tokens(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL, instructions="Summarise.")
    paragraph = "The quick brown fox jumps over the lazy dog. " * 10  # ~100 tokens
    texts = [f"{i}: {paragraph}" for i in range(6)]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": t} for t in texts])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=256
    )
    assert run.status == "completed"
    sent = chat_messages(fake_openai)
    assert sent[0] == {"role": "system", "content": "Summarise."}
    kept = [m["content"] for m in sent[1:]]
    assert 1 <= len(kept) < len(texts)
    assert kept == texts[-len(kept) :]  # the oldest were dropped, the newest kept


def test_prompt_over_max_prompt_tokens_is_incomplete(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "word " * 600}]  # one message, over the budget
    )
    calls_before = len(fake_openai.requests)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=256
    )
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_prompt_tokens"
    assert len(fake_openai.requests) == calls_before  # the model was not called


def test_max_completion_tokens_is_incomplete(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Go on."}])
    fake_openai.script(
        Reply(content="and on and on", finish_reason="length", completion_tokens=300)
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=300
    )
    assert fake_openai.requests[-1].body["max_completion_tokens"] == 300
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage.completion_tokens == 300
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert message.status == "incomplete" and message.incomplete_details.reason == "max_tokens"
    assert message.content[0].text.value == "and on and on"


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (Fail(status=500), "server_error"),
        (Fail(status=429, message="Slow down", code="rate_limit_exceeded"), "rate_limit_exceeded"),
        (
            Fail(status=400, message="Bad prompt", error_type="invalid_request_error"),
            "invalid_prompt",
        ),
    ],
)
def test_model_errors_fail_the_run(
    client: openai.OpenAI, fake_openai: FakeOpenAI, failure: Fail, code: str
) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    fake_openai.script(failure)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed" and run.failed_at is not None
    assert run.last_error.code == code
    assert run.last_error.message


def test_builtin_tool_without_an_implementation_fails_clearly(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    tools = gateway.app.state.services.builtin_tools
    installed = tools.pop("code_interpreter", None)  # as on a server with it disabled
    try:
        assistant = client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "2**10?"}])
        fake_openai.script(
            Reply(tool_calls=[tool_call("call_ci", "code_interpreter", '{"code": "print(2**10)"}')])
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        exposed = fake_openai.requests[-1].body["tools"]
        assert [t["function"]["name"] for t in exposed] == ["code_interpreter"]
        assert run.status == "failed"
        assert run.last_error.code == "server_error"
        assert "code_interpreter" in run.last_error.message
        (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
        assert step.status == "failed" and step.last_error is not None
    finally:
        if installed is not None:
            tools["code_interpreter"] = installed


def test_file_search_results_become_citations(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    search = FakeFileSearch({"capital": ("file-facts", "Paris is the capital of France.")})
    gateway.app.state.services.builtin_tools["file_search"] = search
    try:
        assistant = client.beta.assistants.create(
            model=MODEL,
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": ["vs_assistant"]}},
        )
        thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "Capital of France?"}],
            tool_resources={"file_search": {"vector_store_ids": ["vs_thread"]}},
        )
        fake_openai.script(
            Reply(tool_calls=[tool_call("call_fs", "file_search", '{"query": "capital"}')]),
            Reply(content="It is Paris [1]."),
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
    finally:
        del gateway.app.state.services.builtin_tools["file_search"]

    assert run.status == "completed"
    (invocation,) = search.invocations
    assert invocation.arguments == {"query": "capital"}
    assert invocation.vector_store_ids == ("vs_assistant", "vs_thread")
    assert (invocation.tenant, invocation.run_id) == ("team-a", run.id)
    assert chat_messages(fake_openai)[-1] == {
        "role": "tool",
        "tool_call_id": "call_fs",
        "content": "[1] Paris is the capital of France.",
    }
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    text = message.content[0].text
    (annotation,) = text.annotations
    assert annotation.type == "file_citation"
    assert annotation.file_citation.file_id == "file-facts"
    assert text.value[annotation.start_index : annotation.end_index] == annotation.text == "[1]"

    path = f"/threads/{thread.id}/runs/{run.id}/steps?order=asc"
    plain = get_json(gateway, path)
    assert_matches("ListRunStepsResponse", plain)
    search_call = plain["data"][0]["step_details"]["tool_calls"][0]
    assert search_call["type"] == "file_search"
    assert "content" not in search_call["file_search"]["results"][0]
    included = get_json(
        gateway,
        f"{path}&include[]=step_details.tool_calls[*].file_search.results[*].content",
    )
    result = included["data"][0]["step_details"]["tool_calls"][0]["file_search"]["results"][0]
    assert result["content"][0]["text"] == "Paris is the capital of France."


def test_citations_of_several_searches_stay_distinct(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    search = FakeFileSearch(
        {"france": ("file-fr", "Paris is in France."), "italy": ("file-it", "Rome is in Italy.")}
    )
    gateway.app.state.services.builtin_tools["file_search"] = search
    try:
        assistant = client.beta.assistants.create(model=MODEL, tools=[{"type": "file_search"}])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Capitals?"}])
        fake_openai.script(
            Reply(
                tool_calls=[
                    tool_call("call_fr", "file_search", '{"query": "france"}'),
                    tool_call("call_it", "file_search", '{"query": "italy"}'),
                ]
            ),
            Reply(content="Paris [1], Rome [2]."),
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
    finally:
        del gateway.app.state.services.builtin_tools["file_search"]

    assert run.status == "completed"
    outputs = [m["content"] for m in chat_messages(fake_openai) if m["role"] == "tool"]
    assert outputs == ["[1] Paris is in France.", "[2] Rome is in Italy."]
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    cited = [(a.text, a.file_citation.file_id) for a in message.content[0].text.annotations]
    assert cited == [("[1]", "file-fr"), ("[2]", "file-it")]


def test_code_interpreter_files_are_attached_to_the_answer(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    sandbox = FakeCodeInterpreter(output="1024\n", created_file="file-plot")
    gateway.app.state.services.builtin_tools["code_interpreter"] = sandbox
    try:
        assistant = client.beta.assistants.create(
            model=MODEL,
            tools=[{"type": "code_interpreter"}],
            tool_resources={"code_interpreter": {"file_ids": ["file-data"]}},
        )
        thread = client.beta.threads.create(
            messages=[
                {
                    "role": "user",
                    "content": "Plot it",
                    "attachments": [
                        {"file_id": "file-extra", "tools": [{"type": "code_interpreter"}]}
                    ],
                }
            ]
        )
        code = "print(2**10)"
        fake_openai.script(
            Reply(tool_calls=[tool_call("call_ci", "code_interpreter", f'{{"code": "{code}"}}')]),
            Reply(content="2**10 is 1024; the plot is file-plot."),
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
    finally:
        del gateway.app.state.services.builtin_tools["code_interpreter"]

    assert run.status == "completed"
    (invocation,) = sandbox.invocations
    assert invocation.arguments == {"code": code}
    assert invocation.file_ids == ("file-data", "file-extra")
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    (ci_call,) = steps[0].step_details.tool_calls
    assert ci_call.type == "code_interpreter"
    assert ci_call.code_interpreter.input == code
    assert ci_call.code_interpreter.outputs[0].logs == "1024\n"
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert [a.file_id for a in message.attachments] == ["file-plot"]
    (annotation,) = message.content[0].text.annotations
    assert annotation.type == "file_path" and annotation.file_path.file_id == "file-plot"


def test_run_options_reach_the_model(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    assistant = client.beta.assistants.create(
        model=MODEL, instructions="Base.", tools=[WEATHER_TOOL], temperature=0.2
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "First"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_instructions="Extra.",
        additional_messages=[{"role": "user", "content": "Second"}],
        top_p=0.5,
        response_format={"type": "json_object"},
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    assert run.status == "completed"
    assert run.instructions == "Base.\n\nExtra."
    body = fake_openai.requests[-1].body
    assert body["messages"] == [
        {"role": "system", "content": "Base.\n\nExtra."},
        {"role": "user", "content": "First"},
        {"role": "user", "content": "Second"},
    ]
    assert (body["temperature"], body["top_p"]) == (0.2, 0.5)
    assert body["response_format"] == {"type": "json_object"}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    # additional_messages became part of the thread.
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id)]
    assert "Second" in texts

    override = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, instructions="Only this.", tools=[]
    )
    assert override.status == "completed" and override.tools == []
    body = fake_openai.requests[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Only this."}
    assert "tools" not in body


def test_run_model_must_exist(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, model="gpt-nope")
