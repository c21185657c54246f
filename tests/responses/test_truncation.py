"""``truncation: auto`` fits a response's context with the context stage's ``truncate``:
the oldest items go, while developer items, a call's output with its call and the newest
input stay."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MODEL = "resp-small"


@pytest.fixture(scope="module")
def door(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {"models": [fake_model(MODEL, fake_openai_server.base_url, context_window=400)]}
    )


def items(turns: int = 20) -> list[dict[str, Any]]:
    """User turns answered by function calls, a developer note midway, a final question."""
    out: list[dict[str, Any]] = []
    for turn in range(turns):
        out.append({"role": "user", "content": f"Question {turn}: what about topic {turn}?"})
        out.append(
            {
                "type": "function_call",
                "call_id": f"call_{turn}",
                "name": "lookup",
                "arguments": f'{{"topic": {turn}}}',
            }
        )
        out.append(
            {
                "type": "function_call_output",
                "call_id": f"call_{turn}",
                "output": f"Topic {turn} is well documented, see section {turn}.",
            }
        )
        if turn == 3:
            out.append({"role": "developer", "content": "Always answer in French."})
    out.append({"role": "user", "content": "And the last topic?"})
    return out


def create(door: PortwayServer, truncation: str) -> httpx.Response:
    return httpx.post(
        f"{door.base_url}/responses",
        json={
            "model": MODEL,
            "input": items(),
            "store": False,
            "truncation": truncation,
            "max_output_tokens": 50,
            "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
        },
        timeout=30,
    )


def test_auto_keeps_developer_items_and_calls_with_their_outputs(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    response = create(door, "auto")
    assert response.status_code == 200, response.text
    sent = fake_openai.requests[0].body["messages"]
    assert len(sent) < len(items())
    # the developer note sat among the oldest turns: it stays (sent as the system role)
    assert sent[0] == {"role": "system", "content": "Always answer in French."}
    assert sent[-1]["content"] == "And the last topic?"
    calls = {c["id"] for m in sent for c in m.get("tool_calls") or ()}
    results = {m["tool_call_id"] for m in sent if m["role"] == "tool"}
    assert calls == results and calls
    assert sent[1]["role"] == "user"  # the oldest kept turn starts whole


def test_disabled_refuses_the_long_input(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    response = create(door, "disabled")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert fake_openai.requests == []
