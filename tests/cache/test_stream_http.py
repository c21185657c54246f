"""Streams and the cache: replay as SSE, assemble streamed answers, never cache broken streams."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.cache.conftest import CacheServerFactory, ask, sdk
from tests.fakes.openai_upstream import Drop, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

CALL = {
    "id": "call_42",
    "type": "function",
    "function": {"name": "lookup", "arguments": '{"q": 1}'},
}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def server(serve_cached: CacheServerFactory) -> PortwayServer:
    return serve_cached()


@pytest.fixture
def client(server: PortwayServer) -> openai.OpenAI:
    return sdk(server)


def stream(client: openai.OpenAI, prompt: str, **params: Any) -> tuple[str | None, list[Any]]:
    params.setdefault("temperature", 0)
    raw = client.chat.completions.with_raw_response.create(
        model="fake-gpt", messages=[{"role": "user", "content": prompt}], stream=True, **params
    )
    chunks = list(raw.parse())
    for chunk in chunks:
        assert_matches("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    return raw.headers.get("x-portway-cache"), chunks


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_streamed_answer_serves_a_plain_call(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    status, chunks = stream(client, prompt)
    assert status == "miss"
    status, completion, _ = ask(client, prompt)
    assert status == "hit"
    assert len(fake_openai.requests) == 1
    assert completion.choices[0].message.content == text_of(chunks) == f"echo: {prompt}"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == 12
    assert completion.usage.prompt_tokens_details.cached_tokens == 7
    assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))


def test_plain_answer_replays_as_a_stream(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    _, completion, _ = ask(client, prompt)
    status, chunks = stream(client, prompt)
    assert status == "hit"
    assert len(fake_openai.requests) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == completion.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id != completion.id


def test_replayed_stream_reports_usage_when_asked(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    stream(client, prompt)
    status, chunks = stream(client, prompt, stream_options={"include_usage": True})
    assert status == "hit"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 12
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 7
    assert all(c.usage is None for c in chunks[:-1])


def test_tool_calls_survive_both_directions(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    fake_openai.script(Reply(tool_calls=[CALL]))
    stream(client, prompt, tools=TOOLS)
    status, chunks = stream(client, prompt, tools=TOOLS)
    assert status == "hit"
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.id, d.function.name) for d in deltas] == [(0, "call_42", "lookup")]
    assert json.loads(deltas[0].function.arguments) == {"q": 1}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    status, completion, _ = ask(client, prompt, tools=TOOLS)
    assert status == "hit"
    message = completion.choices[0].message
    assert message.content is None
    assert message.tool_calls[0].id == "call_42"
    assert json.loads(message.tool_calls[0].function.arguments) == {"q": 1}
    assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    assert len(fake_openai.requests) == 1


def test_broken_stream_is_not_cached(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    fake_openai.script(Drop(after=2))
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model="fake-gpt",
                messages=[{"role": "user", "content": prompt}],
                temperature=0,
                stream=True,
            )
        )
    assert ask(client, prompt)[0] == "miss"
    assert len(fake_openai.requests) == 2


def test_abandoned_stream_is_not_cached(
    server: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    # The whole answer would take ~0.3 s to stream; the client leaves after the first event.
    fake_openai.script(Reply(chunk_delay=0.05))
    body = {
        "model": "fake-gpt",
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
        assert response.headers["x-portway-cache"] == "miss"
        next(response.iter_lines())
    time.sleep(0.5)  # long enough that an uncancelled stream would have finished and stored
    assert ask(client, prompt)[0] == "miss"
    assert len(fake_openai.requests) == 2


def test_replay_wire_format(server: PortwayServer, client: openai.OpenAI, prompt: str) -> None:
    ask(client, prompt)
    body = {
        "model": "fake-gpt",
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-portway-cache"] == "hit"
        events = [e for e in response.read().decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    for event in events[:-1]:
        assert_matches("CreateChatCompletionStreamResponse", json.loads(event[6:]))


def test_bad_cache_header_on_a_stream_is_a_plain_400(server: PortwayServer, prompt: str) -> None:
    body = {
        "model": "fake-gpt",
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    response = httpx.post(
        f"{server.base_url}/chat/completions", json=body, headers={"x-portway-cache": "maybe"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-portway-cache"
