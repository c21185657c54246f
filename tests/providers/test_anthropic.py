"""The Anthropic provider against the fake Messages API: what it sends and how it reads answers.

The fake rejects bodies the real API would reject (roles that do not alternate, tool
results not right after their calls, empty text, ...), so every successful call here
also shows the translated request is valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from portway.config import ModelConfig
from portway.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    PortwayError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitError,
    UpstreamUnavailableError,
)
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.anthropic import AnthropicProvider
from portway.providers.anthropic_ids import to_anthropic_id
from portway.providers.anthropic_translate import OPENING_USER_TEXT
from tests.fakes.anthropic_upstream import (
    Drop,
    Fail,
    FakeAnthropic,
    Reply,
    StreamError,
    ToolUse,
    validate,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}


def make_request(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatCompletionRequest.model_validate({"model": "claude", **fields})


async def open_provider(base_url: str, **config: Any) -> AnthropicProvider:
    provider = AnthropicProvider(
        ModelConfig(
            name="claude",
            provider="anthropic",
            model="claude-sonnet-4-5",
            base_url=base_url,
            api_key="sk-ant-test",
            **config,
        )
    )
    await provider.start()
    return provider


@pytest.fixture
async def provider(fake_anthropic: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    provider = await open_provider(fake_anthropic.base_url)
    yield provider
    await provider.close()


async def collect(provider: AnthropicProvider, request: ChatCompletionRequest) -> list[Any]:
    return [chunk async for chunk in provider.stream(request)]


# Requests --------------------------------------------------------------------


async def test_headers_path_model_and_default_max_tokens(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(make_request())
    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


@pytest.mark.parametrize(
    ("config", "fields", "expected"),
    [
        ({"max_output_tokens": 1000}, {}, 1000),
        ({"max_output_tokens": 1000}, {"max_tokens": 50}, 50),
        ({}, {"max_tokens": 50, "max_completion_tokens": 70}, 70),
    ],
)
async def test_max_tokens_sources(
    fake_anthropic: FakeAnthropic, config: dict[str, Any], fields: dict[str, Any], expected: int
) -> None:
    provider = await open_provider(fake_anthropic.base_url, **config)
    try:
        await provider.chat(make_request(**fields))
    finally:
        await provider.close()
    assert fake_anthropic.last_body["max_tokens"] == expected


async def test_configured_headers_are_sent(fake_anthropic: FakeAnthropic) -> None:
    provider = await open_provider(
        fake_anthropic.base_url, headers={"Anthropic-Beta": "prompt-caching-2024-07-31"}
    )
    try:
        await provider.chat(make_request())
    finally:
        await provider.close()
    headers = fake_anthropic.requests[-1].headers
    assert headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert headers["anthropic-version"] == "2023-06-01"


async def test_base_url_with_v1_suffix_is_not_doubled(fake_anthropic: FakeAnthropic) -> None:
    provider = await open_provider(fake_anthropic.base_url + "/v1/")
    try:
        completion = await provider.chat(make_request())
    finally:
        await provider.close()
    assert completion["choices"][0]["message"]["content"] == "echo: hi"
    assert fake_anthropic.requests[-1].path == "/v1/messages"


async def test_system_and_developer_become_top_level_system_and_turns_merge(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(
        make_request(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "assistant", "content": "un"},
                {"role": "assistant", "content": [{"type": "text", "text": "deux"}]},
                {"role": "user", "content": "three"},
            ]
        )
    )
    body = fake_anthropic.last_body
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "un"}, {"type": "text", "text": "deux"}],
        },
        {"role": "user", "content": [{"type": "text", "text": "three"}]},
    ]


async def test_final_assistant_prefill_loses_trailing_whitespace(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(
        make_request(
            messages=[
                {"role": "user", "content": "Start with a brace."},
                {"role": "assistant", "content": "{ \n"},
            ]
        )
    )
    assert fake_anthropic.last_body["messages"][-1]["content"] == [{"type": "text", "text": "{"}]


@pytest.mark.parametrize(
    ("messages", "expected_system", "roles"),
    [
        ([{"role": "system", "content": "Greet the user."}], "Greet the user.", ["user"]),
        (
            [
                {"role": "system", "content": "You are a pirate."},
                {"role": "assistant", "content": "Arrr, ahoy!"},
                {"role": "user", "content": "hi"},
            ],
            "You are a pirate.",
            ["user", "assistant", "user"],
        ),
    ],
)
async def test_conversations_that_do_not_open_with_a_user_turn_get_one(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    messages: list[dict[str, Any]],
    expected_system: str,
    roles: list[str],
) -> None:
    await provider.chat(make_request(messages=messages))
    body = fake_anthropic.last_body
    assert body["system"] == expected_system
    assert body["messages"][0] == {
        "role": "user",
        "content": [{"type": "text", "text": OPENING_USER_TEXT}],
    }
    assert [turn["role"] for turn in body["messages"]] == roles


async def test_images_from_data_and_http_urls(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(
        make_request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "compare"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    ],
                }
            ]
        )
    )
    blocks = fake_anthropic.last_body["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }


async def test_tool_history_and_parallel_results_share_one_user_turn(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(
        make_request(
            tools=[WEATHER_TOOL, TIME_TOOL],
            messages=[
                {"role": "user", "content": "Weather in Paris and the time?"},
                {
                    "role": "assistant",
                    "content": "Let me check.",
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "toolu_2",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                {
                    "role": "tool",
                    "tool_call_id": "toolu_2",
                    "content": [{"type": "text", "text": "noon"}],
                },
                {"role": "user", "content": "Thanks, summarise."},
            ],
        )
    )
    body = fake_anthropic.last_body
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "noon"},
            {"type": "text", "text": "Thanks, summarise."},
        ],
    }
    assert len(body["messages"]) == 3


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            None,
            {"type": "tool", "name": "get_time"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
async def test_tool_choice_mapping(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    tool_choice: Any,
    parallel: bool | None,
    expected: dict[str, Any],
) -> None:
    fields: dict[str, Any] = {"tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": tool_choice}
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    await provider.chat(make_request(**fields))
    assert fake_anthropic.last_body["tool_choice"] == expected


async def test_sampling_parameters(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(
        make_request(temperature=1.6, stop=["END", "STOP"], user="u-42", seed=3, top_k=40)
    )
    body = fake_anthropic.last_body
    assert body["temperature"] == 1.0  # OpenAI's 0..2 clamped to Anthropic's 0..1
    assert body["top_k"] == 40
    assert body["stop_sequences"] == ["END", "STOP"]
    assert body["metadata"] == {"user_id": "u-42"}
    assert "seed" not in body and "stop" not in body


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"temperature": 0.2, "top_p": 0.5}, {"temperature": 0.2}),
        ({"top_p": 0.5}, {"top_p": 0.5}),
        ({"temperature": 0.0}, {"temperature": 0.0}),
    ],
)
async def test_temperature_and_top_p_are_never_sent_together(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    fields: dict[str, Any],
    expected: dict[str, float],
) -> None:
    # claude-sonnet-4-5 (the README's example) answers 400 to both; temperature wins.
    completion = await provider.chat(make_request(**fields))
    assert completion["choices"][0]["message"]["content"] == "echo: hi"
    body = fake_anthropic.last_body
    assert {key: body[key] for key in ("temperature", "top_p") if key in body} == expected


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        (["END", " ", "\t\n", "STOP"], ["END", "STOP"]),
        (["", "END"], ["END"]),
        ("\n", None),
        (["\n\n", "  "], None),
        ("\nHuman:", ["\nHuman:"]),
    ],
)
async def test_whitespace_only_stop_sequences_are_dropped(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    stop: str | list[str],
    expected: list[str] | None,
) -> None:
    await provider.chat(make_request(stop=stop))
    assert fake_anthropic.last_body.get("stop_sequences") == expected


async def test_whitespace_only_text_parts_are_dropped(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(
        make_request(
            messages=[
                {"role": "system", "content": [{"type": "text", "text": " \n"}]},
                {"role": "developer", "content": "  "},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "\n"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                },
                {"role": "assistant", "content": " \n "},
                {"role": "user", "content": [{"type": "text", "text": "What is it?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Sure?"}, {"type": "text", "text": " "}],
                },
            ]
        )
    )
    body = fake_anthropic.last_body
    assert "system" not in body
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert body["messages"] == [
        {"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        {"role": "user", "content": [{"type": "text", "text": "Sure?"}]},
    ]


async def test_whitespace_only_tool_output_is_an_empty_tool_result(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(
        make_request(
            tools=[TIME_TOOL],
            messages=[
                {"role": "user", "content": "Time?"},
                {"role": "assistant", "content": "\n", "tool_calls": [call("get_time", "")]},
                {"role": "tool", "tool_call_id": "t", "content": "  "},
            ],
        )
    )
    turns = fake_anthropic.last_body["messages"]
    assert turns[1]["content"] == [{"type": "tool_use", "id": "t", "name": "get_time", "input": {}}]
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": "t"}]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": " \n\t"}], "messages[0].content"),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": [{"type": "text", "text": "  "}]},
            ],
            "messages[2].content",
        ),
    ],
)
async def test_a_user_message_without_text_is_a_400_naming_it(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    messages: list[dict[str, Any]],
    param: str,
) -> None:
    # Dropping the last user turn would make "Hello!" a prefill for the model to continue.
    with pytest.raises(InvalidRequestError) as caught:
        await provider.chat(make_request(messages=messages))
    assert caught.value.param == param
    assert fake_anthropic.requests == []


async def test_system_parts_are_separated(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    await provider.chat(
        make_request(
            messages=[
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "You are a pirate."},
                        {"type": "text", "text": "Answer in one line."},
                    ],
                },
                {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
                {"role": "user", "content": "hi"},
            ]
        )
    )
    assert fake_anthropic.last_body["system"] == (
        "You are a pirate.\n\nAnswer in one line.\n\nNo emoji."
    )


FOREIGN_IDS = ["functions.get_weather:0", "functions.get_weather:1"]


def foreign_history(ids: list[str]) -> list[dict[str, Any]]:
    """A history whose tool-call ids came from another server (Kimi-style ids)."""
    calls = [
        call("get_weather", f'{{"city": "{city}"}}', i) for i, city in zip(ids, "AB", strict=True)
    ]
    results = [{"role": "tool", "tool_call_id": i, "content": "sunny"} for i in ids]
    return [
        {"role": "user", "content": "Weather in A and B?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        *results,
    ]


async def test_foreign_tool_call_ids_are_mapped_stably(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    for _ in range(2):
        await provider.chat(
            make_request(tools=[WEATHER_TOOL], messages=foreign_history(FOREIGN_IDS))
        )
    first, second = (recorded.body["messages"] for recorded in fake_anthropic.requests)
    assert first == second  # the same history maps the same way, with no state kept
    used = [block["id"] for block in first[1]["content"]]
    answered = [block["tool_use_id"] for block in first[2]["content"]]
    assert used == answered == [to_anthropic_id(i) for i in FOREIGN_IDS]
    assert len(set(used)) == 2
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", i) for i in used)
    assert used[0].startswith("functions_get_weather_0_")


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("toolu_01A-b", "toolu_01A-b"),
        ("call_abc123", "call_abc123"),
    ],
)
def test_conforming_ids_pass_unchanged(original: str, expected: str) -> None:
    assert to_anthropic_id(original) == expected


def test_ids_differing_only_in_replaced_characters_stay_distinct() -> None:
    mapped = {to_anthropic_id(i) for i in ("a.b", "a:b", "a_b", "a b", "", "é")}
    assert len(mapped) == 6
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", i) for i in mapped)


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_naming_a_mapped_id_gives_the_client_its_own_id(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    mapped = to_anthropic_id(FOREIGN_IDS[0])
    fake_anthropic.script(
        Reply(tool_uses=[ToolUse("get_weather", id=mapped), ToolUse("get_weather", id="toolu_9")])
    )
    request = make_request(
        tools=[WEATHER_TOOL], messages=foreign_history(FOREIGN_IDS), stream=stream
    )
    if stream:
        chunks = await collect(provider, request)
        ids = [
            call["id"]
            for chunk in chunks
            if chunk["choices"]
            for call in chunk["choices"][0]["delta"].get("tool_calls", [])
            if "id" in call
        ]
    else:
        completion = await provider.chat(request)
        ids = [call["id"] for call in completion["choices"][0]["message"]["tool_calls"]]
    assert ids == [FOREIGN_IDS[0], "toolu_9"]


async def test_tool_history_without_tools_declares_stubs_that_cannot_be_called(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    history = [
        {"role": "user", "content": "Weather and time?"},
        {
            "role": "assistant",
            "tool_calls": [
                call("get_weather", '{"city": "Oslo"}', "c1"),
                call("get_time", "", "c2"),
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "snow"},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
        {"role": "assistant", "tool_calls": [call("get_weather", '{"city": "Rome"}', "c3")]},
        {"role": "tool", "tool_call_id": "c3", "content": "sun"},
    ]
    for choice in (None, "none", "auto"):
        fields: dict[str, Any] = {"messages": history}
        if choice is not None:
            fields["tool_choice"] = choice
        completion = await provider.chat(make_request(**fields))
        assert completion["choices"][0]["finish_reason"] == "stop"
        body = fake_anthropic.last_body
        assert [tool["name"] for tool in body["tools"]] == ["get_weather", "get_time"]
        assert all(tool["input_schema"] == {"type": "object"} for tool in body["tools"])
        assert body["tool_choice"] == {"type": "none"}


async def test_tool_history_without_tools_beside_an_emulated_format(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(tool_uses=[ToolUse("person", {"name": "Ada", "age": 36})]))
    completion = await provider.chat(
        make_request(
            response_format=PERSON_FORMAT,
            messages=[
                {"role": "user", "content": "Who? Look it up."},
                {"role": "assistant", "tool_calls": [call("lookup", '{"q": "Ada"}', "c1")]},
                {"role": "tool", "tool_call_id": "c1", "content": "Ada Lovelace, 36"},
            ],
        )
    )
    body = fake_anthropic.last_body
    assert [tool["name"] for tool in body["tools"]] == ["lookup", "person"]
    assert body["tool_choice"]["name"] == "person"
    assert json.loads(completion["choices"][0]["message"]["content"]) == {"name": "Ada", "age": 36}


def image_message(url: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}


def call(name: str, arguments: str, call_id: str = "t") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


ARRAY_FORMAT = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "array"}}}
UNKNOWN_CHOICE = {"type": "function", "function": {"name": "x"}}
BROKEN_CALL = {"role": "assistant", "tool_calls": [call("f", "{oops")]}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER_TOOL], "tool_choice": UNKNOWN_CHOICE}, "tool_choice"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
        ({"messages": [{"role": "system", "content": " "}]}, "messages"),
        ({"messages": [image_message("ftp://x/y.png")]}, "messages[0].content[0]"),
        ({"messages": [image_message("data:image/bmp;base64,AA")]}, "messages[0].content[0]"),
        (
            {"messages": [{"role": "user", "content": "x"}, BROKEN_CALL]},
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({"response_format": ARRAY_FORMAT}, "response_format.json_schema.schema"),
    ],
)
async def test_what_anthropic_cannot_express_is_a_400_before_any_call(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    fields: dict[str, Any],
    param: str,
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await provider.chat(make_request(**fields))
    assert caught.value.status_code == 400
    assert caught.value.param == param
    assert fake_anthropic.requests == []


# Responses -------------------------------------------------------------------


async def test_text_reply_and_usage_with_cache_tokens(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        Reply(
            text="Bonjour",
            input_tokens=10,
            output_tokens=4,
            cache_read_input_tokens=100,
            cache_creation_input_tokens=5,
        )
    )
    completion = await provider.chat(make_request())
    assert completion["id"].startswith("chatcmpl-msg_fake")
    assert completion["object"] == "chat.completion"
    choice = completion["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Bonjour", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert completion["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 4,
        "total_tokens": 119,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length")],
)
async def test_stop_reasons(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    stop_reason: str,
    finish_reason: str,
) -> None:
    fake_anthropic.script(Reply(text="x", stop_reason=stop_reason))
    completion = await provider.chat(make_request())
    assert completion["choices"][0]["finish_reason"] == finish_reason


async def test_tool_use_blocks_become_tool_calls(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        Reply(
            text="Checking.",
            tool_uses=[
                ToolUse("get_weather", {"city": "Paris"}, id="toolu_a"),
                ToolUse("get_time", id="toolu_b"),
            ],
        )
    )
    completion = await provider.chat(make_request(tools=[WEATHER_TOOL, TIME_TOOL]))
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    calls = choice["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [
        ("toolu_a", "get_weather"),
        ("toolu_b", "get_time"),
    ]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert json.loads(calls[1]["function"]["arguments"]) == {}


PERSON_FORMAT = {
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


async def test_json_schema_is_emulated_with_a_forced_tool(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        Reply(tool_uses=[ToolUse("person", {"name": "Ada", "age": 36})], stop_reason="tool_use")
    )
    completion = await provider.chat(make_request(response_format=PERSON_FORMAT))
    body = fake_anthropic.last_body
    assert len(body["tools"]) == 1
    assert body["tools"][0]["name"] == "person"
    assert body["tools"][0]["input_schema"] == PERSON_FORMAT["json_schema"]["schema"]
    assert body["tool_choice"] == {
        "type": "tool",
        "name": "person",
        "disable_parallel_tool_use": True,
    }
    choice = completion["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"name": "Ada", "age": 36}
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


async def test_json_object_is_a_forced_free_form_tool(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(tool_uses=[ToolUse("json_object", {"ok": True})]))
    completion = await provider.chat(make_request(response_format={"type": "json_object"}))
    body = fake_anthropic.last_body
    assert body["tools"][0]["input_schema"]["type"] == "object"
    assert body["tool_choice"]["name"] == "json_object"
    assert json.loads(completion["choices"][0]["message"]["content"]) == {"ok": True}
    assert completion["choices"][0]["finish_reason"] == "stop"


async def test_json_schema_with_real_tools_lets_the_model_pick_either(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(tool_uses=[ToolUse("get_weather", {"city": "Oslo"})]))
    completion = await provider.chat(
        make_request(response_format=PERSON_FORMAT, tools=[WEATHER_TOOL])
    )
    body = fake_anthropic.last_body
    assert [tool["name"] for tool in body["tools"]] == ["get_weather", "person"]
    assert body["tool_choice"] == {"type": "any"}
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


# Errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "error_class", "status"),
    [
        (
            Fail(429, "rate_limit_error", "slow down", {"retry-after": "7"}),
            UpstreamRateLimitError,
            429,
        ),
        (Fail(529, "overloaded_error", "Overloaded"), UpstreamUnavailableError, 503),
        (
            Fail(529, "overloaded_error", "Overloaded", {"retry-after": "3"}),
            UpstreamOverloadedError,
            503,
        ),
        (
            Fail(503, "overloaded_error", "Overloaded", {"retry-after-ms": "1500"}),
            UpstreamOverloadedError,
            503,
        ),
        (Fail(401, "authentication_error", "invalid x-api-key"), UpstreamAuthError, 502),
        (Fail(403, "permission_error", "no access"), UpstreamAuthError, 502),
        (
            Fail(
                400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
            ),
            ContextLengthExceededError,
            400,
        ),
        (Fail(400, "invalid_request_error", "messages: bad"), UpstreamBadRequestError, 400),
        (Fail(500, "api_error", "Internal server error"), UpstreamError, 502),
    ],
)
async def test_error_mapping(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    action: Fail,
    error_class: type[PortwayError],
    status: int,
) -> None:
    for stream in (False, True):
        fake_anthropic.script(action)
        with pytest.raises(PortwayError) as caught:
            if stream:
                await collect(provider, make_request(stream=True))
            else:
                await provider.chat(make_request())
        assert type(caught.value) is error_class
        assert caught.value.status_code == status
        assert action.message in caught.value.message
    if error_class is UpstreamRateLimitError:
        assert caught.value.retry_after == 7.0  # type: ignore[attr-defined]
        assert caught.value.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("headers", "retry_after", "header"),
    [({"retry-after": "3"}, 3.0, "3"), ({"retry-after-ms": "1500"}, 1.5, "2")],
)
async def test_an_overload_keeps_its_retry_after_for_the_router(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    headers: dict[str, str],
    retry_after: float,
    header: str,
) -> None:
    fake_anthropic.script(Fail(529, "overloaded_error", "Overloaded", headers))
    with pytest.raises(UpstreamUnavailableError) as caught:
        await provider.chat(make_request())
    error = caught.value
    # The router pauses a deployment and waits for it only on a rate-limit error's retry_after.
    assert isinstance(error, RateLimitError)
    assert error.retry_after == retry_after
    assert (error.status_code, error.code, error.headers["retry-after"]) == (
        503,
        "upstream_unavailable",
        header,
    )


# Streams ---------------------------------------------------------------------


async def test_stream_text_chunks(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(text="Hello there, world", input_tokens=9, output_tokens=3))
    chunks = await collect(provider, make_request(stream=True))
    assert fake_anthropic.last_body["stream"] is True
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["id"].startswith("chatcmpl-msg_")
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello there, world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 9
    assert chunks[-1]["usage"]["completion_tokens"] == 3


async def test_stream_tool_call_deltas(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        Reply(
            text="On it.",
            tool_uses=[
                ToolUse("get_weather", {"city": "Paris", "unit": "celsius"}, id="toolu_x"),
                ToolUse("get_time", id="toolu_y"),
            ],
        )
    )
    chunks = await collect(provider, make_request(stream=True, tools=[WEATHER_TOOL, TIME_TOOL]))
    deltas = [
        call
        for chunk in chunks
        if chunk["choices"]
        for call in chunk["choices"][0]["delta"].get("tool_calls", [])
    ]
    firsts = [d for d in deltas if "id" in d]
    assert [(d["index"], d["id"], d["function"]["name"]) for d in firsts] == [
        (0, "toolu_x", "get_weather"),
        (1, "toolu_y", "get_time"),
    ]
    arguments = ["", ""]
    for delta in deltas:
        arguments[delta["index"]] += delta["function"].get("arguments", "")
    assert json.loads(arguments[0]) == {"city": "Paris", "unit": "celsius"}
    assert json.loads(arguments[1]) == {}  # a call without input still gets an object
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_json_schema_answer_streams_as_content(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(tool_uses=[ToolUse("person", {"name": "Ada", "age": 36})]))
    chunks = await collect(provider, make_request(stream=True, response_format=PERSON_FORMAT))
    assert not any(c["choices"] and "tool_calls" in c["choices"][0]["delta"] for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert json.loads(text) == {"name": "Ada", "age": 36}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("reply", "content"),
    [
        (Reply(text="Sure: ", tool_uses=[ToolUse("person", {"name": "Ada"})]), '{"name":"Ada"}'),
        (Reply(text="I cannot answer that.", stop_reason="end_turn"), "I cannot answer that."),
    ],
)
async def test_stream_and_completion_agree_on_emulated_json_content(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic, reply: Reply, content: str
) -> None:
    fake_anthropic.script(reply, reply)
    completion = await provider.chat(make_request(response_format=PERSON_FORMAT))
    chunks = await collect(provider, make_request(stream=True, response_format=PERSON_FORMAT))
    streamed = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
    )
    assert completion["choices"][0]["message"]["content"] == content
    assert streamed == content
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_stream_error_event_is_an_upstream_error_after_the_first_chunks(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(StreamError(after=5, error_type="overloaded_error"))
    received: list[Any] = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in provider.stream(make_request(stream=True)):
            received.append(chunk)
    assert "overloaded_error" in caught.value.message
    assert received[0]["choices"][0]["delta"]["role"] == "assistant"


@pytest.mark.parametrize("clean", [True, False])
async def test_stream_ending_without_message_stop_is_an_upstream_error(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic, clean: bool
) -> None:
    fake_anthropic.script(Drop(after=4, clean=clean))
    with pytest.raises(UpstreamError):
        await collect(provider, make_request(stream=True))


# The fake is as strict as the real API (otherwise the tests above prove little) -----


def _body(*contents: Any, **extra: Any) -> dict[str, Any]:
    """A Messages body whose turns alternate user/assistant with these contents."""
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)]
    return {"model": "m", "max_tokens": 10, "messages": messages, **extra}


_USE = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
_RESULT = {"type": "tool_result", "tool_use_id": "t1"}
_USE_FOREIGN = {**_USE, "id": "functions.f:0"}
_RESULT_FOREIGN = {**_RESULT, "tool_use_id": "functions.f:0"}
_TEXT = {"type": "text", "text": "b"}
_TOOLS = [{"name": "f", "input_schema": {"type": "object"}}]
_TWO_USERS = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "a"}] * 2}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_TWO_USERS, "alternate"),
        (
            {"model": "m", "max_tokens": 10, "messages": [{"role": "assistant", "content": "a"}]},
            "first message",
        ),
        (_body([{"type": "text", "text": ""}]), "non-empty"),
        (_body([{"type": "text", "text": " \n"}]), "non-whitespace text"),
        (_body("a", "  ", "b"), "non-whitespace text"),
        (_body("a", system=[{"type": "text", "text": " "}]), "non-whitespace text"),
        (_body("a", temperature=0.5, top_p=0.9), "cannot both be specified"),
        (_body("a", stop_sequences=["END", "\n"]), "non-whitespace"),
        (_body("a", stop_sequences=[""]), "non-empty"),
        (_body("a", [_USE_FOREIGN], [_RESULT_FOREIGN], tools=_TOOLS), "should match pattern"),
        (_body("a", [_USE], [_RESULT_FOREIGN], tools=_TOOLS), "should match pattern"),
        (_body("a", temperature=1.5), "temperature"),
        ({"model": "m", "messages": [{"role": "user", "content": "a"}]}, "max_tokens"),
        (_body("a", [_USE], "b", tools=_TOOLS), "without `tool_result`"),
        (_body("a", [_USE], [_TEXT, _RESULT], tools=_TOOLS), "come first"),
        (_body("a", [_USE], [_RESULT]), "must define tools"),
        (_body("a", tools=_TOOLS, tool_choice={"type": "tool", "name": "g"}), "tool_choice.name"),
        (_body("a", [_TEXT, {"type": "text", "text": "trailing "}]), "trailing whitespace"),
    ],
)
def test_fake_rejects_what_anthropic_rejects(body: dict[str, Any], problem: str) -> None:
    found = validate(body)
    assert found is not None and problem in found


def test_fake_accepts_a_valid_tool_round_trip() -> None:
    assert validate(_body("a", [_TEXT, _USE], [_RESULT, _TEXT], tools=_TOOLS)) is None


@pytest.mark.parametrize(
    "body",
    [
        # Whitespace beside real text is accepted; only all-whitespace turns are refused.
        _body([{"type": "text", "text": " "}, _TEXT]),
        # Claude 3 models still take both samplers.
        {**_body("a", temperature=0.5, top_p=0.9), "model": "claude-3-5-haiku-latest"},
        _body("a", stop_sequences=["\nHuman:"]),
    ],
)
def test_fake_accepts_what_anthropic_accepts(body: dict[str, Any]) -> None:
    assert validate(body) is None
