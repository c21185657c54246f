"""Chat completions through Portway to an OpenAI-compatible upstream, via the official SDK."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.openapi import assert_matches


def test_completion_matches_openai_schema(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    completion = client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "hello"}]
    )
    assert completion.choices[0].message.content == "echo: hello"
    assert completion.model == "fake-gpt"
    assert completion.usage is not None and completion.usage.total_tokens == 12
    assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    sent = fake_openai.requests[-1]
    assert sent.body["model"] == "upstream-fake-gpt"
    assert sent.headers["Authorization"] == "Bearer sk-upstream-secret"


def test_raw_response_has_request_id_and_schema(gateway, fake_openai: FakeOpenAI) -> None:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    assert_matches("CreateChatCompletionResponse", response.json())


def test_all_request_parameters_pass_through(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    client.chat.completions.create(
        model="fake-gpt",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=50,
        n=1,
        stop=["END"],
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        logit_bias={"50256": -100},
        user="u1",
        metadata={"k": "v"},
        parallel_tool_calls=False,
        tool_choice="auto",
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        response_format={"type": "json_object"},
        extra_body={"top_k": 20},
    )
    body = fake_openai.requests[-1].body
    assert body["temperature"] == 0.2 and body["seed"] == 7 and body["top_k"] == 20
    assert body["messages"][3]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["response_format"] == {"type": "json_object"}


def test_tool_calls_come_back(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
    }
    fake_openai.script(Reply(tool_calls=[call]))
    completion = client.chat.completions.create(
        model="fake-gpt",
        messages=[{"role": "user", "content": "look it up"}],
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.name == "lookup"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"q": "x"}


def test_stream_chunks_match_schema(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "stream me"}], stream=True
    )
    chunks = list(stream)
    for chunk in chunks:
        assert_matches("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
        assert chunk.model == "fake-gpt"
        assert chunk.usage is None
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "echo: stream me"
    # Portway always asks the upstream for usage (for accounting) ...
    assert fake_openai.requests[-1].body["stream_options"] == {"include_usage": True}


def test_stream_usage_chunk_when_asked(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="fake-gpt",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_stream_tool_call_deltas(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    call = {
        "id": "call_7",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "streamed"}'},
    }
    fake_openai.script(Reply(tool_calls=[call]))
    chunks = list(
        client.chat.completions.create(
            model="fake-gpt",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        )
    )
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(arguments) == {"q": "streamed"}
    assert all(
        tc.index == 0 for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []
    )
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_raw_sse_wire_format(gateway, fake_openai: FakeOpenAI) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json={
            "model": "fake-gpt",
            "stream": True,
            "messages": [{"role": "user", "content": "wire"}],
        },
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    for event in events[:-1]:
        assert_matches("CreateChatCompletionStreamResponse", json.loads(event[6:]))


def test_embeddings_pass_through(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    result = client.embeddings.create(model="fake-gpt", input=["a", "b"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    assert result.model == "fake-gpt"
    assert_matches("CreateEmbeddingResponse", result.model_dump(exclude_unset=True))


@pytest.mark.parametrize("method", ["list", "retrieve"])
def test_models_endpoints(client: openai.OpenAI, method: str) -> None:
    if method == "list":
        page = client.models.list()
        assert [m.id for m in page.data] == ["fake-gpt"]
        assert_matches("ListModelsResponse", page.model_dump(exclude_unset=True))
    else:
        model = client.models.retrieve("fake-gpt")
        assert_matches("Model", model.model_dump(exclude_unset=True))


def test_client_disconnect_cancels_upstream(gateway, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(content="word " * 200, chunk_delay=0.05))
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json={
            "model": "fake-gpt",
            "stream": True,
            "messages": [{"role": "user", "content": "long"}],
        },
    ) as response:
        lines = response.iter_lines()
        next(lines)
    # The upstream sees its connection closed while it still had chunks to send.
    for _ in range(100):
        if fake_openai.disconnects:
            break
        time.sleep(0.05)
    assert fake_openai.disconnects == 1


def test_pass_through_keeps_the_clients_body_but_never_a_stale_one() -> None:
    from portway.protocol.chat import ChatCompletionRequest

    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_k": 3}
    request = ChatCompletionRequest.from_wire(body)
    assert request.wire_body() is body  # no re-serialisation on the hot path
    changed = request.model_copy(update={"temperature": 0.5})
    assert changed.wire_body() == {**body, "temperature": 0.5}
    with pytest.raises(ValueError):
        request.temperature = 0.1  # type: ignore[misc]  # frozen: change means a new object
