"""The semantic cache through real HTTP with the bundled local embedding model."""

from __future__ import annotations

import numpy as np
import openai
import pytest

from portway.cache.semantic.embedder import bundled_model_path
from portway.cache.semantic.minilm import BertSentenceEncoder
from portway.config import SemanticCacheConfig
from tests.cache.conftest import CacheServerFactory, ask, cached_settings, sdk
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

THRESHOLD = 0.85
# Pairs measured with all-MiniLM-L6-v2: paraphrases score 0.89-0.99, the different
# questions 0.58-0.74 (close wording, different meaning).
PARAPHRASES = [
    ("How do I reset my password?", "How can I reset my password?"),
    ("Write a haiku about autumn", "Compose a haiku about the fall season"),
    ("What is the capital of France?", "what is the capital of france"),
]
DIFFERENT = [
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("How do I reset my password?", "How do I delete my account?"),
    ("What is the boiling point of water?", "What is the freezing point of water?"),
    ("Translate hello to Spanish", "Translate goodbye to Spanish"),
]


@pytest.fixture(scope="module")
def server(serve_cached: CacheServerFactory) -> PortwayServer:
    return serve_cached(
        semantic={"enabled": True, "threshold": THRESHOLD},
        models={"fake-gpt-2": {"semantic": False}},
    )


@pytest.fixture
def client(server: PortwayServer, prompt: str) -> openai.OpenAI:
    # A sub-namespace per test keeps questions asked by other tests out of reach.
    return server.sdk("anonymous", default_headers={"x-portway-cache-namespace": prompt})


@pytest.mark.parametrize(("asked", "paraphrase"), PARAPHRASES)
def test_paraphrases_hit(
    client: openai.OpenAI, fake_openai: FakeOpenAI, asked: str, paraphrase: str
) -> None:
    assert ask(client, asked)[0] == "miss"
    status, completion, headers = ask(client, paraphrase)
    assert status == "semantic-hit"
    assert float(headers["x-portway-cache-similarity"]) >= THRESHOLD
    assert completion.choices[0].message.content == f"echo: {asked}"
    assert completion.usage.prompt_tokens_details.cached_tokens == 7
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(("asked", "other"), DIFFERENT)
def test_different_questions_miss(
    client: openai.OpenAI, fake_openai: FakeOpenAI, asked: str, other: str
) -> None:
    ask(client, asked)
    status, completion, headers = ask(client, other)
    assert status == "miss" and "x-portway-cache-similarity" not in headers
    assert completion.choices[0].message.content == f"echo: {other}"
    assert len(fake_openai.requests) == 2


def test_only_within_the_same_context(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    asked, paraphrase = PARAPHRASES[0]
    terse = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": asked}]
    ask(client, asked, messages=terse)
    other_system = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": paraphrase},
    ]
    assert ask(client, paraphrase, messages=other_system)[0] == "miss"
    assert ask(client, paraphrase, max_tokens=5)[0] == "miss"
    assert ask(client, paraphrase, model="fake-gpt-2")[0] == "miss"  # semantic off there
    assert len(fake_openai.requests) == 4


def test_only_within_the_same_tenant(server: PortwayServer, fake_openai: FakeOpenAI) -> None:
    asked, paraphrase = PARAPHRASES[1]
    ask(sdk(server, "key-a"), asked)
    assert ask(sdk(server, "key-b"), paraphrase)[0] == "miss"
    assert ask(sdk(server, "key-a"), paraphrase)[0] == "semantic-hit"


def test_semantic_hit_replays_a_stream(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    asked, paraphrase = PARAPHRASES[2]
    ask(client, asked)
    raw = client.chat.completions.with_raw_response.create(
        model="fake-gpt",
        messages=[{"role": "user", "content": paraphrase}],
        temperature=0,
        stream=True,
    )
    assert raw.headers["x-portway-cache"] == "semantic-hit"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == f"echo: {asked}"


def test_embeddings_from_a_configured_model(
    serve_cached: CacheServerFactory, fake_openai_server: FakeOpenAI, fake_openai: FakeOpenAI
) -> None:
    settings = cached_settings(
        fake_openai_server, semantic={"enabled": True, "embedding_model": "fake-gpt-2"}
    )
    client = sdk(serve_cached(settings))
    assert ask(client, "same words")[0] == "miss"
    # Text parts instead of a string: another exact key, the same text to embed.
    status, _, headers = ask(client, [{"type": "text", "text": "same words"}])
    assert status == "semantic-hit"
    assert float(headers["x-portway-cache-similarity"]) == pytest.approx(1.0, abs=1e-3)
    embedded = [r.body for r in fake_openai.requests if r.path == "/v1/embeddings"]
    assert [body["input"] for body in embedded] == ["same words", "same words"]
    assert embedded[0]["model"] == "upstream-fake-gpt-2"


@pytest.fixture(scope="module")
def default_server(serve_cached: CacheServerFactory) -> PortwayServer:
    """Semantic cache on with the default threshold and prompt bound."""
    return serve_cached(semantic={"enabled": True})


@pytest.fixture
def default_client(default_server: PortwayServer, prompt: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=default_server.base_url,
        api_key="anonymous",
        max_retries=0,
        default_headers={"x-portway-cache-namespace": prompt},
    )


def test_a_changed_number_is_not_served_from_a_near_match(
    default_client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    # The finding: at threshold 0.9 the 12-miles question got the 10-miles answer.
    cached, asked = "Convert 10 miles to kilometers.", "Convert 12 miles to kilometers."
    encoder = BertSentenceEncoder.from_directory(bundled_model_path())
    first, second = encoder.encode([cached, asked])
    assert float(np.dot(first, second)) >= SemanticCacheConfig().threshold >= 0.9
    assert ask(default_client, cached)[0] == "miss"
    status, completion, headers = ask(default_client, asked)
    assert status == "miss" and "x-portway-cache-similarity" not in headers
    assert completion.choices[0].message.content == f"echo: {asked}"
    assert [r.body["messages"][-1]["content"] for r in fake_openai.requests] == [cached, asked]
    # A rewording that keeps the number is still answered from the cache.
    status, completion, _ = ask(default_client, "Convert 10 miles into km.")
    assert status == "semantic-hit"
    assert completion.choices[0].message.content == f"echo: {cached}"
    assert len(fake_openai.requests) == 2


def test_prompts_longer_than_the_bound_get_exact_hits_only(
    default_client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    # Past the embedder's 256 tokens two prompts embed alike however their ends differ.
    context = "The quarterly report covers sales, costs and hiring across all regions. " * 20
    assert len(context) > SemanticCacheConfig().max_prompt_chars
    cached, asked = context + "What was the revenue in Q1?", context + "Who was hired in Q3?"
    assert ask(default_client, cached)[0] == "miss"
    status, completion, _ = ask(default_client, asked)
    assert status == "miss"
    assert completion.choices[0].message.content == f"echo: {asked}"
    assert ask(default_client, cached)[0] == "hit"
    assert len(fake_openai.requests) == 2
