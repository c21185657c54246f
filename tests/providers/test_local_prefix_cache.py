"""The local model reads a prompt's already-cached prefix once: a shared system prompt, a
conversation's earlier turns, a prefix another sequence holds.

Through HTTP with the OpenAI SDK against two real Portways serving SmolLM2-135M, one
with the prefix cache (the default) and one without: greedy answers are the same on
both, and ``usage.prompt_tokens_details.cached_tokens`` says how much was reused.
"""

from __future__ import annotations

from typing import Any

import pytest

from portway.providers.local import LocalProvider
from tests.fakes.server import PortwayServer

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
SYSTEM = (
    "You are the help desk of a bicycle shop. Answer in one short sentence, politely, "
    "and never promise a repair date."
)
BODY: dict[str, Any] = {"max_tokens": 12, "temperature": 0}
EOS_TOKEN = "2"  # SmolLM2's <|im_end|>


def local_model(prefix_cache: bool) -> dict[str, Any]:
    options = {"n_threads": 1, "parallel": 2, "prefix_cache": prefix_cache}
    return {"name": MODEL, "provider": "local", "options": options}


@pytest.fixture(scope="module")
def cached(start_portway) -> PortwayServer:
    return start_portway({"models": [local_model(prefix_cache=True)]})


@pytest.fixture(scope="module")
def uncached(start_portway) -> PortwayServer:
    return start_portway({"models": [local_model(prefix_cache=False)]})


def engine_of(server: PortwayServer) -> Any:
    provider = server.app.state.services.catalog.group(MODEL)[0].provider
    assert isinstance(provider, LocalProvider) and provider.engine is not None
    return provider.engine


def chat(
    server: PortwayServer, messages: list[dict[str, str]], key: str = "unused", **extra: Any
) -> Any:
    """A greedy chat as ``key``; ``extra`` goes in the body (e.g. ``cache_salt``)."""
    return server.sdk(key).chat.completions.create(
        model=MODEL, messages=messages, extra_body=extra or None, **BODY
    )


def with_system(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def cached_tokens(completion: Any) -> int:
    return completion.usage.prompt_tokens_details.cached_tokens


def test_a_shared_system_prompt_is_read_once(
    cached: PortwayServer, uncached: PortwayServer
) -> None:
    first = chat(cached, with_system("Do you sell helmets?"))
    second = chat(cached, with_system("Can you fix a flat tyre today?"))
    # The system prompt and the template around it are reused; the question is read.
    assert 20 < cached_tokens(second) < second.usage.prompt_tokens
    for completion, question in (
        (first, "Do you sell helmets?"),
        (second, "Can you fix a flat tyre today?"),
    ):
        reference = chat(uncached, with_system(question))
        assert cached_tokens(reference) == 0
        assert completion.choices[0].message.content == reference.choices[0].message.content
        assert completion.usage.prompt_tokens == reference.usage.prompt_tokens
        assert completion.usage.completion_tokens == reference.usage.completion_tokens


def test_the_next_turn_reuses_the_conversation_so_far(
    cached: PortwayServer, uncached: PortwayServer
) -> None:
    turn = with_system("What are your opening hours?")
    first = chat(cached, turn)
    turn += [
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": "And on Sundays?"},
    ]
    second = chat(cached, turn)
    # Everything the first call read is reused, and part of its answer too.
    assert cached_tokens(second) >= first.usage.prompt_tokens
    assert second.choices[0].message.content == chat(uncached, turn).choices[0].message.content


def test_a_prefix_held_by_another_slot_is_copied(
    cached: PortwayServer, uncached: PortwayServer
) -> None:
    engine = engine_of(cached)
    copies = engine.prefixes_copied
    chat(cached, with_system("Where is the shop?"))  # a slot now holds the system prompt
    # That slot is busy with a long answer (its end banned) when the next call comes,
    # so the next call gets the other slot and a copy of the prefix.
    running = cached.sdk().chat.completions.create(
        model=MODEL,
        messages=with_system("Tell me about your shop."),
        stream=True,
        max_tokens=60,
        temperature=0,
        logit_bias={EOS_TOKEN: -100},
    )
    for chunk in running:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    question = with_system("Do you rent tandems?")
    beside = chat(cached, question)
    rest = list(running)
    assert engine.prefixes_copied == copies + 1
    assert cached_tokens(beside) > 20
    assert rest and rest[-1].choices[0].finish_reason == "length"
    assert beside.choices[0].message.content == chat(uncached, question).choices[0].message.content


def test_a_stream_reports_the_cached_tokens(cached: PortwayServer) -> None:
    messages = with_system("Do you sell bells?")
    chat(cached, messages)
    stream = cached.sdk().chat.completions.create(
        model=MODEL,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **BODY,
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert len(usage) == 1
    # The whole prompt but its last token, which is read again for the first token.
    assert usage[0].prompt_tokens_details.cached_tokens == usage[0].prompt_tokens - 1


def test_without_the_cache_nothing_is_reused(uncached: PortwayServer) -> None:
    messages = with_system("Do you sell lights?")
    chat(uncached, messages)
    assert cached_tokens(chat(uncached, messages)) == 0
    assert engine_of(uncached).tokens_reused == 0


MASTER = "sk-master-prefix-cache"


@pytest.fixture(scope="module")
def keyed(start_portway) -> PortwayServer:
    return start_portway({"master_key": MASTER, "models": [local_model(prefix_cache=True)]})


def test_tenants_never_share_a_cached_prefix(keyed: PortwayServer) -> None:
    alice = keyed.create_key(MASTER, name="alice")["key"]
    bob = keyed.create_key(MASTER, name="bob")["key"]
    chat(keyed, with_system("Do you sell gloves?"), alice)
    # Bob's prompt starts with the same system prompt, but Alice's cache is hers: his
    # answer takes as long as a cold one, and his usage says nothing of hers.
    assert cached_tokens(chat(keyed, with_system("Do you sell pumps?"), bob)) == 0
    assert cached_tokens(chat(keyed, with_system("Do you sell chains?"), alice)) > 20
    assert cached_tokens(chat(keyed, with_system("Do you sell locks?"), bob)) > 20


def test_a_cache_salt_splits_a_tenants_cache(keyed: PortwayServer) -> None:
    carol = keyed.create_key(MASTER, name="carol")["key"]
    chat(keyed, with_system("Do you sell saddles?"), carol)
    salted = chat(keyed, with_system("Do you sell baskets?"), carol, cache_salt="project-x")
    assert cached_tokens(salted) == 0
    again = chat(keyed, with_system("Do you sell mirrors?"), carol, cache_salt="project-x")
    assert cached_tokens(again) > 20
