"""Responses on the real local model (SmolLM2-135M via llama.cpp), through the SDK."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import call, check_stream

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def local_server(start_portway) -> PortwayServer:
    return start_portway({"models": [{"name": MODEL, "provider": "local"}]})


@pytest.fixture
def client(local_server: PortwayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_server.base_url, api_key="unused", max_retries=0)


def test_basic_and_streamed_on_the_local_model(
    local_server: PortwayServer, client: openai.OpenAI
) -> None:
    response = client.responses.create(
        model=MODEL, input="Say hello.", instructions="Answer briefly.", max_output_tokens=24
    )
    assert response.status in ("completed", "incomplete")
    assert response.output_text.strip()
    assert response.usage is not None and 0 < response.usage.output_tokens <= 24
    assert_matches("Response", call(local_server, "GET", f"/responses/{response.id}").json())

    with client.responses.stream(model=MODEL, input="Count to three.", max_output_tokens=16) as s:
        events = [event.model_dump(mode="json", exclude_unset=True) for event in s]
    check_stream(events)
    assert events[-1]["type"] in ("response.completed", "response.incomplete")


def test_json_schema_is_grammar_constrained_on_the_local_model(client: openai.OpenAI) -> None:
    class City(BaseModel):
        name: str
        population: int

    parsed = client.responses.parse(
        model=MODEL,
        input="Describe Paris as JSON.",
        text_format=City,
        max_output_tokens=128,
        temperature=0,
    )
    assert parsed.status == "completed"
    assert isinstance(parsed.output_parsed, City)


def test_function_tool_on_the_local_model(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=128,
        temperature=0,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert isinstance(json.loads(calls[0].arguments)["city"], str)  # grammar-constrained

    follow_up = client.responses.create(
        model=MODEL,
        previous_response_id=response.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny."}],
        tools=[WEATHER],
        max_output_tokens=64,
        temperature=0,
    )
    assert follow_up.status in ("completed", "incomplete")
    assert follow_up.output
