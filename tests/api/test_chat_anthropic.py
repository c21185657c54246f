"""Chat completions through Portway to Anthropic's Messages API (a fake), via the official SDK."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory
from tests.fakes.anthropic_upstream import Fail, FakeAnthropic, Reply, StreamError, ToolUse
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL: Any = {"type": "function", "function": {"name": "get_time", "parameters": {}}}


@pytest.fixture(scope="module")
def claude_gateway(
    start_portway: PortwayFactory, fake_anthropic_server: FakeAnthropic
) -> PortwayServer:
    model = {
        "name": "claude",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "base_url": fake_anthropic_server.base_url,
        "api_key": "sk-ant-test",
    }
    # No gateway retries nor stream resumes: these tests check how one upstream answer
    # maps to the client (resumes: tests/routing/test_stream_resume.py).
    route = {"retries": 0, "stream_resume": False}
    return start_portway({"models": [model], "router": {"claude": route}})


@pytest.fixture
def claude(claude_gateway: PortwayServer) -> openai.OpenAI:
    return claude_gateway.sdk()


def stream_chunks(client: openai.OpenAI, **fields: Any) -> list[Any]:
    """Every chunk of a streamed completion, each checked against OpenAI's schema."""
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    chunks = list(client.chat.completions.create(model="claude", stream=True, **fields))
    for chunk in chunks:
        assert_matches("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
        assert chunk.model == "claude"
    return chunks


def test_plain_chat(claude: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Reply(text="Hello from Claude", input_tokens=12, output_tokens=4))
    completion = claude.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "hello"},
        ],
        max_tokens=64,
    )
    assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    assert completion.model == "claude"
    assert completion.id.startswith("chatcmpl-msg_")
    assert completion.choices[0].message.content == "Hello from Claude"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 4)
    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["system"] == "Be kind."
    assert sent.body["max_tokens"] == 64


def test_streaming(claude: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Reply(text="Streaming from Claude, piece by piece"))
    chunks = stream_chunks(claude)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Streaming from Claude, piece by piece"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)  # not asked for
    assert len({chunk.id for chunk in chunks}) == 1


def test_streaming_usage_when_asked(claude: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Reply(text="x", input_tokens=20, output_tokens=2))
    chunks = stream_chunks(claude, stream_options={"include_usage": True})
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.total_tokens) == (20, 22)


def test_raw_sse_wire_format(claude_gateway: PortwayServer, fake_anthropic: FakeAnthropic) -> None:
    with httpx.stream(
        "POST",
        f"{claude_gateway.base_url}/chat/completions",
        json={"model": "claude", "stream": True, "messages": [{"role": "user", "content": "w"}]},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = [event for event in body.split("\n\n") if event]
    assert events[-1] == "data: [DONE]"
    for event in events[:-1]:
        assert event.startswith("data: ")
        assert_matches("CreateChatCompletionStreamResponse", json.loads(event[6:]))


def test_tool_calls(claude: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(
        Reply(
            tool_uses=[
                ToolUse("get_weather", {"city": "Paris"}, id="toolu_01"),
                ToolUse("get_weather", {"city": "Rome"}, id="toolu_02"),
            ]
        )
    )
    completion = claude.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather in Paris and Rome?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [call.id for call in calls] == ["toolu_01", "toolu_02"]
    assert [json.loads(call.function.arguments) for call in calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert fake_anthropic.last_body["tool_choice"] == {"type": "any"}


def test_tool_results_round_trip_in_one_user_turn(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(text="Paris is sunny, Rome is rainy."))
    calls = [
        {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": args}}
        for call_id, args in (("toolu_01", '{"city": "Paris"}'), ("toolu_02", '{"city": "Rome"}'))
    ]
    completion = claude.chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny"},
            {"role": "tool", "tool_call_id": "toolu_02", "content": "rainy"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert completion.choices[0].message.content == "Paris is sunny, Rome is rainy."
    turns = fake_anthropic.last_body["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert [block["tool_use_id"] for block in turns[2]["content"]] == ["toolu_01", "toolu_02"]


def test_streamed_tool_call_arguments_reassemble(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        Reply(
            text="Let me look.",
            tool_uses=[
                ToolUse("get_weather", {"city": "Zürich", "days": [1, 2, 3]}, id="toolu_a"),
                ToolUse("get_time", id="toolu_b"),
            ],
        )
    )
    chunks = stream_chunks(claude, tools=[WEATHER_TOOL, TIME_TOOL])
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function and delta.function.name) or ""
            call["arguments"] += (delta.function and delta.function.arguments) or ""
    assert sorted(calls) == [0, 1]
    assert (calls[0]["id"], calls[0]["name"]) == ("toolu_a", "get_weather")
    assert json.loads(calls[0]["arguments"]) == {"city": "Zürich", "days": [1, 2, 3]}
    assert (calls[1]["id"], calls[1]["name"]) == ("toolu_b", "get_time")
    assert json.loads(calls[1]["arguments"]) == {}
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Let me look."
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


PERSON_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_emulation(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    fake_anthropic.script(Reply(tool_uses=[ToolUse("person", {"name": "Ada", "age": 36})]))
    messages: Any = [{"role": "user", "content": "Who wrote the first program?"}]
    if stream:
        chunks = stream_chunks(claude, messages=messages, response_format=PERSON_FORMAT)
        content = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert not any(c.choices[0].delta.tool_calls for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        completion = claude.chat.completions.create(
            model="claude", messages=messages, response_format=PERSON_FORMAT
        )
        assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
        assert completion.choices[0].message.tool_calls is None
        content = completion.choices[0].message.content or ""
        finish = completion.choices[0].finish_reason
    assert json.loads(content) == {"name": "Ada", "age": 36}
    assert finish == "stop"
    body = fake_anthropic.last_body
    assert body["tool_choice"]["name"] == "person"
    assert body["tools"][0]["input_schema"] == PERSON_FORMAT["json_schema"]["schema"]


def assert_openai_error(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["x-request-id"]
    body = response.json()
    assert_matches("ErrorResponse", body)
    assert body["error"]["code"] == code
    return body["error"]  # type: ignore[no-any-return]


def test_rate_limit_passes_retry_after(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        Fail(429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "7"})
    )
    with pytest.raises(openai.RateLimitError) as caught:
        claude.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "7"
    assert_openai_error(caught.value.response, 429, "upstream_rate_limited")


@pytest.mark.parametrize("stream", [False, True])
def test_overloaded_is_503(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    fake_anthropic.script(Fail(529, "overloaded_error", "Overloaded"))
    with pytest.raises(openai.InternalServerError) as caught:
        # The error comes before the first chunk, so even a stream gets a JSON error.
        claude.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], stream=stream
        )
    assert_openai_error(caught.value.response, 503, "upstream_unavailable")


def test_upstream_bad_request_is_400(claude: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Fail(400, "invalid_request_error", "messages.0: something is off"))
    with pytest.raises(openai.BadRequestError) as caught:
        claude.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    error = assert_openai_error(caught.value.response, 400, "upstream_bad_request")
    assert error["type"] == "invalid_request_error"
    assert "something is off" in error["message"]


def test_prompt_too_long_is_context_length_exceeded(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        Fail(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
    )
    with pytest.raises(openai.BadRequestError) as caught:
        claude.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    error = assert_openai_error(caught.value.response, 400, "context_length_exceeded")
    assert error["param"] == "messages"


@pytest.mark.parametrize(("field", "value"), [("n", 2), ("logprobs", True)])
def test_unsupported_parameters_are_400_with_param(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic, field: str, value: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        claude.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], **{field: value}
        )
    error = assert_openai_error(caught.value.response, 400, None)
    assert error["param"] == field
    assert fake_anthropic.requests == []


def test_error_event_mid_stream_reaches_the_client(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(StreamError(after=5, reply=Reply(text="partial answer here")))
    received: list[Any] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in claude.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"
    assert "overloaded_error" in caught.value.message


# Translation details Anthropic is strict about (the fake refuses what the API refuses) --


def test_temperature_and_top_p_together_send_only_temperature(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    completion = claude.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "pick a colour"}],
        temperature=0.3,
        top_p=0.9,
    )
    assert completion.choices[0].message.content == "echo: pick a colour"
    body = fake_anthropic.last_body
    assert body["temperature"] == 0.3
    assert "top_p" not in body


def test_whitespace_only_stops_and_text_parts_are_dropped(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    completion = claude.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "\n"}]},
            {"role": "user", "content": "Write a haiku."},
            {"role": "assistant", "content": " \n"},
            {"role": "user", "content": [{"type": "text", "text": "About rain."}]},
        ],
        stop=["\n\n", "END"],
    )
    assert completion.choices[0].finish_reason == "stop"
    body = fake_anthropic.last_body
    assert body["stop_sequences"] == ["END"]
    assert "system" not in body
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Write a haiku."},
                {"type": "text", "text": "About rain."},
            ],
        }
    ]


def test_a_whitespace_only_user_message_is_a_400_naming_it(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        claude.chat.completions.create(
            model="claude",
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "   "},
            ],
        )
    error = assert_openai_error(caught.value.response, 400, None)
    assert error["param"] == "messages[2].content"
    assert fake_anthropic.requests == []


def test_system_parts_keep_a_separator(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    claude.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "You are terse."},
                    {"type": "text", "text": "Reply in German."},
                ],
            },
            {"role": "user", "content": "hi"},
        ],
    )
    assert fake_anthropic.last_body["system"] == "You are terse.\n\nReply in German."


KIMI_CALLS: Any = [
    {
        "id": f"functions.get_weather:{index}",
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
    }
    for index, city in enumerate(("Paris", "Rome"))
]
KIMI_HISTORY: Any = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": None, "tool_calls": KIMI_CALLS},
    {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"},
    {"role": "tool", "tool_call_id": "functions.get_weather:1", "content": "rainy"},
]


def test_foreign_tool_call_ids_are_mapped_the_same_way_each_time(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(text="Sunny, then rainy."), Reply(text="Sunny, then rainy."))
    for _ in range(2):
        completion = claude.chat.completions.create(
            model="claude", messages=KIMI_HISTORY, tools=[WEATHER_TOOL]
        )
        assert completion.choices[0].message.content == "Sunny, then rainy."
    first, second = (recorded.body["messages"] for recorded in fake_anthropic.requests)
    assert first == second
    used = [block["id"] for block in first[1]["content"]]
    assert [block["tool_use_id"] for block in first[2]["content"]] == used
    assert len(set(used)) == 2
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", call_id) for call_id in used)


def test_tool_history_without_tools(claude: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Reply(text="Paris is sunny, Rome is rainy."))
    # A follow-up that no longer offers tools, e.g. "now just summarise".
    completion = claude.chat.completions.create(model="claude", messages=KIMI_HISTORY)
    assert completion.choices[0].message.content == "Paris is sunny, Rome is rainy."
    assert completion.choices[0].message.tool_calls is None
    body = fake_anthropic.last_body
    assert [tool["name"] for tool in body["tools"]] == ["get_weather"]
    assert body["tool_choice"] == {"type": "none"}


# An overloaded Anthropic (529) that says when to come back ---------------------------


@pytest.fixture(scope="module")
def retrying_gateway(
    start_portway: PortwayFactory, fake_anthropic_server: FakeAnthropic
) -> PortwayServer:
    def model(name: str, api_key: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "base_url": fake_anthropic_server.base_url,
            "api_key": api_key,
            **extra,
        }

    # Backoff far shorter than any retry-after: a wait of a second comes from the header.
    fast = {"retries": 2, "backoff": {"base": "10ms", "max": "50ms"}}
    return start_portway(
        {
            "models": [
                model("claude-retry", "sk-ant-retry"),
                model("claude-capped", "sk-ant-capped"),
                model("claude-pair", "sk-ant-first", priority=0),
                model("claude-pair", "sk-ant-second", priority=1),
            ],
            "router": {
                "claude-retry": fast,
                "claude-capped": {**fast, "backoff": {**fast["backoff"], "retry_after_cap": "1s"}},
                "claude-pair": {**fast, "strategy": "priority"},
            },
        }
    )


def overloaded(retry_after: str) -> Fail:
    return Fail(529, "overloaded_error", "Overloaded", {"retry-after": retry_after})


def test_an_overload_retry_after_is_waited_for_then_retried(
    retrying_gateway: PortwayServer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(overloaded("1"), Reply(text="after the wait"))
    client = retrying_gateway.sdk()
    completion = client.chat.completions.with_raw_response.create(
        model="claude-retry", messages=[{"role": "user", "content": "x"}]
    )
    assert completion.parse().choices[0].message.content == "after the wait"
    assert completion.headers["x-portway-attempts"] == "2"
    first, second = fake_anthropic.requests
    assert second.at - first.at >= 0.95  # a lower bound only: Anthropic asked for 1 s


def test_an_overload_retry_after_reaches_the_client_when_too_long_to_wait(
    retrying_gateway: PortwayServer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.default = overloaded("60")
    client = retrying_gateway.sdk()
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="claude-capped", messages=[{"role": "user", "content": "x"}]
        )
    assert_openai_error(caught.value.response, 503, "upstream_unavailable")
    assert caught.value.response.headers["retry-after"] == "60"
    assert len(fake_anthropic.requests) == 1  # not hammered while it said to wait a minute


def test_an_overloaded_deployment_rests_for_its_retry_after(
    retrying_gateway: PortwayServer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(overloaded("30"))
    client = retrying_gateway.sdk()
    for _ in range(3):
        completion = client.chat.completions.create(
            model="claude-pair", messages=[{"role": "user", "content": "x"}]
        )
        assert completion.choices[0].message.content == "echo: x"
    keys = [recorded.headers["x-api-key"] for recorded in fake_anthropic.requests]
    assert keys == ["sk-ant-first", "sk-ant-second", "sk-ant-second", "sk-ant-second"]
