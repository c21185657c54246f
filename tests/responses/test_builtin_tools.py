"""Built-in tools in responses: file_search over real vector stores (keyword search),
code_interpreter (the assistants' test double for the sandbox), and ``max_tool_calls``."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import openai
import pytest

from tests.assistants.support import (
    MODEL,
    FakeCodeInterpreter,
    sdk,
    start_gateway,
    tool_call,
)
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import call, check_stream, sse_events, types_of


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_gateway(start_portway, fake_openai_server)


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


@pytest.fixture(scope="module")
def store_id(gateway: PortwayServer) -> str:
    client = sdk(gateway)
    file_id = client.files.create(
        file=("shipping.txt", io.BytesIO(b"Orders ship from Lisbon within two days.")),
        purpose="assistants",
    ).id
    store = client.vector_stores.create(name="docs", file_ids=[file_id])
    done = client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=20)
    assert done.status == "completed"
    return store.id


def search_call(call_id: str = "call_fs", query: str = "ship") -> dict:
    return tool_call(call_id, "file_search", json.dumps({"query": query}))


def test_file_search_runs_server_side_and_cites(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI, store_id: str
) -> None:
    fake_openai.script(Reply(tool_calls=[search_call()]), Reply(content="From Lisbon [1]."))
    response = client.responses.create(
        model=MODEL,
        input="Where do orders ship from?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
        include=["file_search_call.results"],
    )
    assert response.status == "completed"
    search, message = response.output
    assert search.type == "file_search_call" and search.queries == ["ship"]
    assert search.status == "completed"
    assert search.results and search.results[0].filename == "shipping.txt"
    assert "Lisbon" in (search.results[0].text or "")
    assert response.output_text == "From Lisbon [1]."
    (annotation,) = message.content[0].annotations  # type: ignore[union-attr]
    assert annotation.type == "file_citation" and annotation.filename == "shipping.txt"
    # The model saw the tool's output on its second call.
    tool_message = fake_openai.requests[-1].body["messages"][-1]
    assert tool_message["role"] == "tool" and "Lisbon" in tool_message["content"]
    assert fake_openai.requests[-2].body["tools"][0]["function"]["name"] == "file_search"
    assert_matches("Response", call(gateway, "GET", f"/responses/{response.id}").json())


def test_file_search_results_only_when_included(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI, store_id: str
) -> None:
    fake_openai.script(Reply(tool_calls=[search_call()]), Reply(content="Lisbon."))
    response = client.responses.create(
        model=MODEL,
        input="Where from?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
    )
    assert response.output[0].results is None  # type: ignore[union-attr]
    stored = call(gateway, "GET", f"/responses/{response.id}").json()
    assert stored["output"][0]["results"] is None


def test_file_search_streams_its_events(
    gateway: PortwayServer, fake_openai: FakeOpenAI, store_id: str
) -> None:
    fake_openai.script(Reply(tool_calls=[search_call()]), Reply(content="Lisbon [1]."))
    response = call(
        gateway,
        "POST",
        "/responses",
        json={
            "model": MODEL,
            "input": "Where from?",
            "tools": [{"type": "file_search", "vector_store_ids": [store_id]}],
            "stream": True,
        },
    )
    events = sse_events(response)
    check_stream(events)
    kinds = types_of(events)
    start = kinds.index("response.file_search_call.in_progress")
    assert kinds[start - 1 : start + 4] == [
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
    ]
    assert "response.output_text.annotation.added" in kinds
    assert kinds[-1] == "response.completed"


def test_max_tool_calls_stops_offering_built_in_tools(
    client: openai.OpenAI, fake_openai: FakeOpenAI, store_id: str
) -> None:
    fake_openai.script(Reply(tool_calls=[search_call()]), Reply(content="Done."))
    response = client.responses.create(
        model=MODEL,
        input="search",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
        tool_choice="required",
        max_tool_calls=1,
    )
    assert response.output_text == "Done." and response.max_tool_calls == 1
    assert "tools" not in fake_openai.requests[-1].body
    assert fake_openai.requests[-2].body["tool_choice"] == "required"


def test_model_call_rounds_are_bounded(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI, store_id: str
) -> None:
    limit = gateway.app.state.services.settings.responses.max_model_calls
    fake_openai.default = Reply(tool_calls=[search_call()])
    response = client.responses.create(
        model=MODEL,
        input="search forever",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
    )
    assert len(fake_openai.requests) == limit
    assert response.status == "failed"
    assert response.error is not None and response.error.code == "server_error"
    assert "max_model_calls" in response.error.message
    assert [item.type for item in response.output] == ["file_search_call"] * limit
    # After max_tool_rounds rounds the model is no longer offered the tools: it must answer.
    rounds = gateway.app.state.services.settings.assistants.max_tool_rounds
    offered = ["tools" in request.body for request in fake_openai.requests]
    assert offered == [True] * rounds + [False] * (limit - rounds)


@pytest.fixture
def sandbox(gateway: PortwayServer) -> Iterator[FakeCodeInterpreter]:
    tools = gateway.app.state.services.builtin_tools
    previous = tools.get("code_interpreter")
    fake = FakeCodeInterpreter(output="42\n", created_file="file-none")
    tools["code_interpreter"] = fake
    yield fake
    if previous is None:
        del tools["code_interpreter"]
    else:
        tools["code_interpreter"] = previous


def test_code_interpreter_call_and_outputs(
    gateway: PortwayServer,
    client: openai.OpenAI,
    fake_openai: FakeOpenAI,
    sandbox: FakeCodeInterpreter,
) -> None:
    code = tool_call("call_ci", "code_interpreter", json.dumps({"code": "print(6 * 7)"}))
    fake_openai.script(Reply(tool_calls=[code]), Reply(content="The answer is 42."))
    response = call(
        gateway,
        "POST",
        "/responses",
        json={
            "model": MODEL,
            "input": "What is 6 * 7?",
            "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}],
            "include": ["code_interpreter_call.outputs"],
            "stream": True,
        },
    )
    events = sse_events(response)
    check_stream(events)
    final = events[-1]["response"]
    interpreter, message = final["output"]
    assert interpreter["type"] == "code_interpreter_call" and interpreter["code"] == "print(6 * 7)"
    assert interpreter["outputs"] == [{"type": "logs", "logs": "42\n"}]
    assert message["content"][0]["text"] == "The answer is 42."
    assert sandbox.invocations[0].arguments == {"code": "print(6 * 7)"}
    assert sandbox.invocations[0].tenant == "team-a"
    kinds = types_of(events)
    assert "response.code_interpreter_call.interpreting" in kinds
    assert "response.code_interpreter_call_code.done" in kinds
    tool_message = fake_openai.requests[-1].body["messages"][-1]
    assert tool_message == {"role": "tool", "tool_call_id": "call_ci", "content": "42\n"}


def test_retrieve_can_include_results_it_did_not_ask_for_at_creation(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI, store_id: str
) -> None:
    fake_openai.script(Reply(tool_calls=[search_call()]), Reply(content="Lisbon."))
    response = client.responses.create(
        model=MODEL,
        input="Where from?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
    )
    assert response.output[0].results is None  # type: ignore[union-attr]
    again = client.responses.retrieve(response.id, include=["file_search_call.results"])
    assert again.output[0].results  # type: ignore[union-attr]
