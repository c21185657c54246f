"""The local model continues a final assistant message (prefill), as a resumed stream asks.

Through HTTP with the OpenAI SDK against a real Portway serving SmolLM2-135M, with vLLM's
``continue_final_message`` flag (what ``LocalProvider.continuation`` sends).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

from tests.fakes.server import PortwayServer

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
EOS_TOKEN = "2"
QUESTION = "Tell me a long story about a dragon."
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def client(start_portway) -> openai.OpenAI:
    model = {"name": MODEL, "provider": "local", "options": {"n_threads": 1}}
    server: PortwayServer = start_portway({"models": [model]})
    return server.sdk()


def continued(client: openai.OpenAI, prefix: str, **body: Any) -> Any:
    return client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": prefix},
        ],
        extra_body={"continue_final_message": True},
        temperature=0,
        **body,
    )


def test_the_answer_goes_on_from_the_prefix(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=20,
        temperature=0,
        logit_bias={EOS_TOKEN: -100},
    )
    text = whole.choices[0].message.content
    words = text.split(" ")
    assert len(words) > 6
    prefix = " ".join(words[:4])
    rest = continued(client, prefix, max_tokens=6, logit_bias={EOS_TOKEN: -100})
    continuation = rest.choices[0].message.content
    # Greedy from the same tokens: the model writes on where the answer went on, not a
    # new reply, and nothing of the prefix is sent again. Only the next word is compared:
    # a prefix evaluated in one batch instead of token by token gives logits a rounding
    # apart, which may tip a later near-tie another way.
    assert continuation and not continuation.strip().startswith(prefix)
    assert continuation.split()[0] == text[len(prefix) :].split()[0]
    assert rest.usage.completion_tokens == 6
    assert rest.usage.prompt_tokens > whole.usage.prompt_tokens  # the prefix is prompt

    streamed = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": prefix},
        ],
        extra_body={"continue_final_message": True},
        temperature=0,
        max_tokens=6,
        logit_bias={EOS_TOKEN: -100},
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
        continuation
    )


def test_a_json_answer_continues_under_its_grammar(client: openai.OpenAI) -> None:
    prefix = '{"name": "'
    rest = continued(
        client,
        prefix,
        max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}},
    )
    jsonschema.validate(json.loads(prefix + rest.choices[0].message.content), PERSON)


@pytest.mark.parametrize(
    ("messages", "extra"),
    [
        ([{"role": "user", "content": "hi"}], {}),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}],
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "p", "schema": PERSON},
                }
            },
        ),
    ],
    ids=["no-assistant-message", "prefix-outside-the-grammar"],
)
def test_what_cannot_be_continued_is_400(
    client: openai.OpenAI, messages: list[dict[str, str]], extra: dict[str, Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=3,
            extra_body={"continue_final_message": True},
            **extra,
        )
    assert caught.value.param == "messages"
