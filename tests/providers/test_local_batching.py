"""Concurrent requests to the real local model share one batch, and none disturbs another.

Through HTTP with the OpenAI SDK against a real Portway serving SmolLM2-135M: greedy
answers are the same whether a request runs alone or among seven others, grammars hold
per sequence, a client that leaves stops only its own sequence, and ``max_tokens`` and
``stop`` are exact per sequence.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from portway.providers.local import LocalProvider
from tests.fakes.server import PortwayServer

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
EOS_TOKEN = "2"  # SmolLM2's <|im_end|>; a -100 bias keeps the model talking
PROMPTS = [
    "Say one.",
    "Name a colour.",
    "What is 2+2?",
    "Write a haiku about rain.",
    "Who wrote Hamlet?",
    "List three fruits.",
    "Describe the sun.",
    "Greet me in French.",
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def server(start_portway) -> PortwayServer:
    # One thread: on a shared 2-core box a second one mostly waits at llama.cpp's barrier.
    model = {"name": MODEL, "provider": "local", "options": {"n_threads": 1}}
    return start_portway({"models": [model]})


@pytest.fixture
def client(server: PortwayServer) -> openai.OpenAI:
    return server.sdk()


def provider_of(server: PortwayServer) -> LocalProvider:
    provider = server.app.state.services.catalog.group(MODEL)[0].provider
    assert isinstance(provider, LocalProvider)
    return provider


def together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at the same time (one client thread each); results in order."""
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def ask(client: openai.OpenAI, prompt: str, **body: Any) -> Any:
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], **body
    )


def test_greedy_answers_are_the_same_alone_and_batched(
    server: PortwayServer, client: openai.OpenAI
) -> None:
    body = {"max_tokens": 12, "temperature": 0}
    alone = [ask(client, prompt, **body) for prompt in PROMPTS]
    engine = provider_of(server).engine
    assert engine is not None
    batched = together([lambda p=prompt: ask(client, p, **body) for prompt in PROMPTS])
    assert [c.choices[0].message.content for c in batched] == [
        c.choices[0].message.content for c in alone
    ]
    assert [c.usage.completion_tokens for c in batched] == [
        c.usage.completion_tokens for c in alone
    ]
    assert len({c.choices[0].message.content for c in alone}) == len(PROMPTS)
    assert engine.largest_batch > 1  # they did share decode steps


def test_n_choices_are_generated_side_by_side(client: openai.OpenAI) -> None:
    single = ask(client, "Name an animal.", max_tokens=6, temperature=0)
    completion = ask(client, "Name an animal.", max_tokens=6, temperature=0, n=3)
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    # Greedy: each choice is the single answer.
    assert [c.message.content for c in completion.choices] == [
        single.choices[0].message.content
    ] * 3
    assert completion.usage.completion_tokens == 3 * single.usage.completion_tokens
    assert completion.usage.prompt_tokens == single.usage.prompt_tokens


def test_tool_calls_and_json_in_one_batch_all_validate(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    cities = ["Paris", "Oslo", "Lima", "Rome"]
    calls: list[Callable[[], Any]] = [
        lambda c=city: ask(
            client,
            f"What's the weather in {c}?",
            tools=[WEATHER],
            tool_choice="required",
            temperature=0.7,
            seed=7,
            max_tokens=60,
        )
        for city in cities
    ]
    calls.append(
        lambda: ask(
            client,
            "Invent a person.",
            response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
            temperature=0,
            max_tokens=60,
        )
    )
    calls += [
        lambda p=prompt: ask(client, p, max_tokens=8, temperature=0) for prompt in PROMPTS[:3]
    ]
    results = together(calls)
    for completion in results[: len(cities)]:
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        call = choice.message.tool_calls[0]
        assert call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    jsonschema.validate(json.loads(results[len(cities)].choices[0].message.content), schema)
    for completion in results[len(cities) + 1 :]:
        assert completion.choices[0].message.content  # plain text, not held by a grammar
        assert completion.choices[0].message.tool_calls is None


def test_a_client_that_leaves_stops_only_its_own_sequence(
    server: PortwayServer, client: openai.OpenAI
) -> None:
    provider = provider_of(server)
    engine = provider.engine
    assert engine is not None
    body = {"max_tokens": 10, "temperature": 0}
    alone = [ask(client, prompt, **body).choices[0].message.content for prompt in PROMPTS[:3]]
    long_request = {
        "model": MODEL,
        "stream": True,
        "max_tokens": 3000,
        "logit_bias": {EOS_TOKEN: -100},
        "messages": [{"role": "user", "content": "Write a very long essay."}],
    }

    def leave_early() -> int:
        with httpx.stream(
            "POST", f"{server.base_url}/chat/completions", json=long_request, timeout=300
        ) as response:
            lines = response.iter_lines()
            for _ in range(6):  # three events: the role, then two tokens
                next(lines)
        return provider.tokens_generated

    def after(delay: float, prompt: str) -> str:
        time.sleep(delay)
        return ask(client, prompt, **body).choices[0].message.content

    before = provider.tokens_generated
    left_at, *answers = together(
        [leave_early] + [lambda p=prompt: after(0.2, p) for prompt in PROMPTS[:3]]
    )
    assert answers == alone  # the others ran on, undisturbed
    deadline = time.monotonic() + 60
    while engine.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.running == 0  # the long one was dropped, not left to run to 3000
    settled = provider.tokens_generated
    time.sleep(0.5)
    assert provider.tokens_generated == settled
    # It had produced the tokens the client read, and stopped far short of 3000.
    assert settled - before < 1000 and left_at - before >= 2


def test_max_tokens_and_stop_hold_per_sequence(client: openai.OpenAI) -> None:
    prompt = "Tell me a long story."
    reference = ask(client, prompt, max_tokens=16, temperature=0, logit_bias={EOS_TOKEN: -100})
    text = reference.choices[0].message.content
    words = text.split()
    assert len(words) >= 4
    stop = " " + words[3]
    expected_before_stop = text[: text.index(stop)]
    caps = [3, 5, 9]
    calls: list[Callable[[], Any]] = [
        lambda cap=cap: ask(
            client, PROMPTS[cap % len(PROMPTS)], max_tokens=cap, logit_bias={EOS_TOKEN: -100}
        )
        for cap in caps
    ]
    calls.append(
        lambda: ask(
            client,
            prompt,
            max_tokens=16,
            temperature=0,
            logit_bias={EOS_TOKEN: -100},
            stop=[stop],
        )
    )
    *capped, stopped = together(calls)
    for cap, completion in zip(caps, capped, strict=True):
        assert completion.choices[0].finish_reason == "length"
        assert completion.usage.completion_tokens == cap
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == expected_before_stop


def test_text_completions_batch_every_prompt(client: openai.OpenAI) -> None:
    prompts = ["The capital of France is", "One, two, three,", "Roses are red,"]
    alone = [
        client.completions.create(model=MODEL, prompt=p, max_tokens=6, temperature=0).choices[0]
        for p in prompts
    ]
    batched = client.completions.create(model=MODEL, prompt=prompts, max_tokens=6, temperature=0)
    assert [c.text for c in batched.choices] == [c.text for c in alone]
    assert [c.index for c in batched.choices] == [0, 1, 2]
