"""Remembered message costs never change a count: what differs is counted again."""

from __future__ import annotations

from typing import Any

from portway.accounting.tokenizer import MessageCostCache, TokenizerService
from portway.protocol.chat import ChatCompletionRequest


def request(*messages: dict[str, Any]) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "gpt-4o", "messages": list(messages)})


async def test_a_remembered_cost_is_only_used_for_the_same_message() -> None:
    warm = await TokenizerService().counter("openai", "gpt-4o")
    history = [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "hi"},
    ]
    warm.count_request(request(*history))
    variants = [
        {"role": "user", "content": "hello there", "name": "someone-with-a-long-name"},
        {"role": "tool", "content": "hello there", "tool_call_id": "call_abcdefghijkl"},
        {"role": "developer", "content": "hello there"},
        {"role": "user", "content": "hello there, again and again"},
    ]
    for variant in variants:
        fresh = await TokenizerService().counter("openai", "gpt-4o")
        probe = request(*history, variant)
        assert warm.count_request(probe) == fresh.count_request(probe)


def test_the_cache_is_bounded_by_characters() -> None:
    cache = MessageCostCache(max_chars=1600)
    for index in range(100):
        key = ("user", f"{index:02d}" + "x" * 48, None, None)
        cache.put(key, index)
    kept = [i for i in range(100) if cache.get(("user", f"{i:02d}" + "x" * 48, None, None))]
    assert 0 < len(kept) <= 32
    assert kept == list(range(100 - len(kept), 100))  # the newest stay
    cache.put(("user", "y" * 101, None, None), 1)  # over 1/16 of the bound: not kept
    assert cache.get(("user", "y" * 101, None, None)) is None
