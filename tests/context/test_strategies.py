"""Truncate and middle-out keep their invariants on random conversations with tool calls,
and what they keep fits the budget as the tokenizer service counts it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portway.accounting.tokenizer import ChatTokenCounter, TokenizerService
from portway.context.stage import prompt_costs
from portway.context.strategies import DROP_STRATEGIES, fit
from portway.context.turns import split
from portway.protocol.chat import ChatCompletionRequest
from tests.context.conversations import conversations

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a thing up.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def counter() -> ChatTokenCounter:
    return asyncio.run(TokenizerService().counter("openai", "gpt-4o"))


def _invariants(messages: list[dict[str, Any]], kept: tuple[int, ...], strategy: str) -> None:
    kept_set = set(kept)
    assert list(kept) == sorted(kept)
    for index, message in enumerate(messages):
        if message["role"] in ("system", "developer"):
            assert index in kept_set, "a system/developer message was dropped"
        for call in message.get("tool_calls") or ():
            results = [i for i, m in enumerate(messages) if m.get("tool_call_id") == call["id"]]
            # a call and its result are kept or dropped together
            assert all((i in kept_set) == (index in kept_set) for i in results)
    latest_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    assert latest_user in kept_set, "the latest user turn was dropped"
    assert len(messages) - 1 in kept_set, "the newest message was dropped"
    if strategy == "middle-out":
        first = next(i for i, m in enumerate(messages) if m["role"] not in ("system", "developer"))
        assert first in kept_set, "middle-out dropped the first turn"


@settings(max_examples=150, deadline=None)
@given(
    messages=conversations(),
    strategy=st.sampled_from(sorted(DROP_STRATEGIES)),
    budget=st.integers(min_value=50, max_value=1500),
    with_tools=st.booleans(),
)
def test_dropping_keeps_the_invariants_and_fits(
    counter: ChatTokenCounter,
    messages: list[dict[str, Any]],
    strategy: str,
    budget: int,
    with_tools: bool,
) -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": messages}
    if with_tools:
        body["tools"] = TOOLS
    request = ChatCompletionRequest.model_validate(body)
    costs, fixed = prompt_costs((counter,), request)
    assert fixed[0] + sum(costs[0]) == counter.count_request(request)
    turns = split(request.messages)
    order = DROP_STRATEGIES[strategy].drop_order(turns)
    result = fit(turns, order, costs, fixed, budget)

    _invariants(messages, result.kept, strategy)
    sent = request.model_copy(update={"messages": [request.messages[i] for i in result.kept]})
    # the count the stage hands on is the tokenizer service's count of what is sent
    assert counter.count_request(sent) == result.tokens
    if result.fits:
        assert result.tokens <= budget
        # nothing was dropped that did not have to be: the drops are a prefix of the order
        dropped = [u for u in order if turns.units[u][0] not in set(result.kept)]
        assert dropped == order[: len(dropped)]
        if dropped:  # one drop fewer would not have fit
            unit = turns.units[dropped[-1]]
            assert result.tokens + sum(costs[0][i] for i in unit) > budget
    else:
        assert result.tokens > budget
        # it only gives up once every unit it may drop is gone
        assert all(turns.units[u][0] not in set(result.kept) for u in order)
