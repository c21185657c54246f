"""Deprecated `functions` / `function_call` in chat requests: the model gets them as tools and
the client gets `message.function_call` back, as OpenAI answers (whole and streamed)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.anthropic_upstream import FakeAnthropic, ToolUse
from tests.fakes.anthropic_upstream import Reply as ClaudeReply
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ARGUMENTS = '{"city": "Paris"}'
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def weather_call(call_id: str = "call_1") -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": ARGUMENTS},
    }


@pytest.fixture(scope="module")
def gateway(
    start_portway: PortwayFactory,
    fake_openai_server: FakeOpenAI,
    fake_anthropic_server: FakeAnthropic,
) -> PortwayServer:
    return start_portway(
        {
            "models": [
                fake_model("gpt", fake_openai_server.base_url),
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-x",
                    "base_url": fake_anthropic_server.base_url,
                    "api_key": "x",
                },
            ]
        }
    )


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)


def post(gateway: PortwayServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=30)


def test_functions_reach_the_model_as_tools_and_come_back_as_function_call(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(tool_calls=[weather_call()]))
    completion = client.chat.completions.create(
        model="gpt", messages=ASK, functions=[WEATHER], function_call={"name": "get_weather"}
    )
    body = completion.model_dump(exclude_unset=True)
    assert_matches("CreateChatCompletionResponse", body)
    [choice] = completion.choices
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call is not None
    assert (choice.message.function_call.name, choice.message.function_call.arguments) == (
        "get_weather",
        ARGUMENTS,
    )
    assert "tool_calls" not in body["choices"][0]["message"]
    [sent] = fake_openai.requests
    assert "functions" not in sent.body and "function_call" not in sent.body
    assert sent.body["tools"] == [{"type": "function", "function": WEATHER}]
    assert sent.body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent.body["parallel_tool_calls"] is False


@pytest.mark.parametrize("choice", ["auto", "none"])
def test_function_call_modes_map_to_tool_choice(
    client: openai.OpenAI, fake_openai: FakeOpenAI, choice: str
) -> None:
    completion = client.chat.completions.create(
        model="gpt", messages=ASK, functions=[WEATHER], function_call=choice
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "echo: Weather in Paris?"
    assert fake_openai.requests[-1].body["tool_choice"] == choice


def test_functions_without_function_call_leave_the_choice_to_the_model(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    client.chat.completions.create(model="gpt", messages=ASK, functions=[WEATHER])
    sent = fake_openai.requests[-1].body
    assert sent["tools"] == [{"type": "function", "function": WEATHER}]
    assert "tool_choice" not in sent


def test_a_streamed_function_call_is_delta_function_call(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(tool_calls=[weather_call()]))
    stream = client.chat.completions.create(
        model="gpt", messages=ASK, functions=[WEATHER], function_call="auto", stream=True
    )
    chunks = [chunk.model_dump(exclude_unset=True) for chunk in stream]
    for chunk in chunks:
        assert_matches("CreateChatCompletionStreamResponse", chunk)
        assert "tool_calls" not in chunk["choices"][0]["delta"]
    calls = [chunk["choices"][0]["delta"].get("function_call") for chunk in chunks]
    pieces = [call for call in calls if call is not None]
    assert pieces[0]["name"] == "get_weather"
    assert "".join(piece.get("arguments", "") for piece in pieces) == ARGUMENTS
    assert chunks[-1]["choices"][0]["finish_reason"] == "function_call"


def test_function_turns_in_the_history_reach_the_model_as_tool_turns(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    messages: list[Any] = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": ARGUMENTS},
        },
        {"role": "function", "name": "get_weather", "content": "18C, sunny"},
    ]
    client.chat.completions.create(model="gpt", messages=messages, functions=[WEATHER])
    sent = fake_openai.requests[-1].body["messages"]
    call_id = sent[1]["tool_calls"][0]["id"]
    assert sent[1]["tool_calls"] == [{**weather_call(call_id)}]
    assert "function_call" not in sent[1]
    assert sent[2] == {"role": "tool", "tool_call_id": call_id, "content": "18C, sunny"}


def test_a_chat_only_provider_gets_functions_as_its_own_tools(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(ClaudeReply(tool_uses=[ToolUse("get_weather", {"city": "Paris"})]))
    completion = client.chat.completions.create(
        model="claude", messages=ASK, functions=[WEATHER], function_call={"name": "get_weather"}
    )
    assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    call = completion.choices[0].message.function_call
    assert call is not None and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "function_call"
    sent = fake_anthropic.requests[-1].body
    assert [tool["name"] for tool in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"]["type"] == "tool" and sent["tool_choice"]["name"] == "get_weather"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {"functions": [WEATHER], "tools": [{"type": "function", "function": WEATHER}]},
            "functions",
        ),
        ({"functions": [WEATHER], "function_call": "auto", "tool_choice": "auto"}, "function_call"),
        ({"function_call": "auto"}, "function_call"),
        ({"functions": [{**WEATHER, "name": "bad name!"}]}, "functions[0].name"),
        ({"functions": []}, "functions"),
        ({"functions": [WEATHER], "function_call": "required"}, "function_call"),
        ({"functions": [WEATHER], "function_call": {"nom": "x"}}, "function_call"),
    ],
)
def test_conflicting_or_malformed_functions_are_a_400(
    gateway: PortwayServer, fake_openai: FakeOpenAI, extra: dict[str, Any], param: str
) -> None:
    response = post(gateway, {"model": "gpt", "messages": ASK, **extra})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert fake_openai.requests == []


@pytest.mark.slow
def test_the_local_model_answers_functions_with_a_valid_function_call(
    start_portway: PortwayFactory,
) -> None:
    server = start_portway({"models": [{"name": "smollm2-135m", "provider": "local"}]})
    local = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    completion = local.chat.completions.create(
        model="smollm2-135m",
        messages=ASK,
        functions=[WEATHER],
        function_call={"name": "get_weather"},
        max_tokens=64,
        temperature=0,
    )
    assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    call = completion.choices[0].message.function_call
    assert call is not None and call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    assert completion.choices[0].finish_reason == "function_call"
