"""Responses on an Anthropic model (through the fake Anthropic upstream): tool call ids and
parallel tool results round-trip through ``previous_response_id`` and conversations."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import PortwayFactory
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply, ToolUse
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import call

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


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
    return start_portway({"models": [model], "router": {"claude": {"retries": 0}}})


@pytest.fixture
def claude(claude_gateway: PortwayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=claude_gateway.base_url, api_key="unused", max_retries=0)


def _ask_for_two_cities(fake: FakeAnthropic) -> None:
    fake.script(
        Reply(
            text="Checking both.",
            tool_uses=[
                ToolUse("get_weather", {"city": "Paris"}, id="toolu_01"),
                ToolUse("get_weather", {"city": "Rome"}, id="toolu_02"),
            ],
        ),
        Reply(text="Paris is sunny, Rome is rainy."),
    )


def _outputs(first: Any) -> list[dict[str, Any]]:
    results = {"Paris": "sunny", "Rome": "rainy"}
    return [
        {
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": results[json.loads(item.arguments)["city"]],
        }
        for item in first.output
        if item.type == "function_call"
    ]


def _check_second_call(fake: FakeAnthropic) -> None:
    turns = fake.last_body["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    uses = [block for block in turns[1]["content"] if block["type"] == "tool_use"]
    assert [block["id"] for block in uses] == ["toolu_01", "toolu_02"]
    results = turns[2]["content"]
    assert [block["tool_use_id"] for block in results] == ["toolu_01", "toolu_02"]
    assert [block["content"] for block in results] in (
        ["sunny", "rainy"],
        [[{"type": "text", "text": "sunny"}], [{"type": "text", "text": "rainy"}]],
    )


def test_parallel_tool_calls_round_trip_by_previous_response_id(
    claude_gateway: PortwayServer, claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    _ask_for_two_cities(fake_anthropic)
    first = claude.responses.create(
        model="claude", input="Weather in Paris and Rome?", tools=[WEATHER]
    )
    assert [item.type for item in first.output] == ["message", "function_call", "function_call"]
    assert [item.call_id for item in first.output[1:]] == ["toolu_01", "toolu_02"]  # type: ignore[union-attr]
    assert_matches("Response", call(claude_gateway, "GET", f"/responses/{first.id}").json())

    second = claude.responses.create(
        model="claude", previous_response_id=first.id, input=_outputs(first), tools=[WEATHER]
    )
    assert second.output_text == "Paris is sunny, Rome is rainy."
    _check_second_call(fake_anthropic)


def test_parallel_tool_calls_round_trip_in_a_conversation(
    claude: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    conversation = claude.conversations.create()
    _ask_for_two_cities(fake_anthropic)
    first = claude.responses.create(
        model="claude",
        conversation=conversation.id,
        input="Weather in Paris and Rome?",
        tools=[WEATHER],
    )
    second = claude.responses.create(
        model="claude", conversation=conversation.id, input=_outputs(first), tools=[WEATHER]
    )
    assert second.output_text == "Paris is sunny, Rome is rainy."
    _check_second_call(fake_anthropic)
