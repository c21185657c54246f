"""The real local model (SmolLM2-135M via llama.cpp) behind a real Portway, via the openai SDK."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time

import httpx
import jsonschema
import openai
import pytest

from portway.assistants.tools import FILE_SEARCH_QUERY_MAX_CHARS, chat_tools
from portway.providers.local import LocalProvider
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.providers.local_checks import assert_stopped

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
EOS_TOKEN = "2"  # SmolLM2's <|im_end|>; a -100 bias keeps the model talking
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def local_server(start_portway) -> PortwayServer:
    return start_portway({"models": [{"name": MODEL, "provider": "local"}]})


@pytest.fixture
def local(local_server: PortwayServer) -> openai.OpenAI:
    return local_server.sdk()


def provider_of(server: PortwayServer) -> LocalProvider:
    provider = server.app.state.services.catalog.group(MODEL)[0].provider
    assert isinstance(provider, LocalProvider)
    return provider


def test_plain_chat(local: openai.OpenAI) -> None:
    completion = local.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=12,
        temperature=0,
    )
    assert_matches("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    choice = completion.choices[0]
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None and 0 < usage.completion_tokens <= 12
    assert usage.prompt_tokens > 5


def test_max_tokens_is_exact(local: openai.OpenAI) -> None:
    completion = local.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a long story."}],
        max_tokens=7,
        temperature=0,
        logit_bias={EOS_TOKEN: -100},
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 7


def _evaluate_other_prompt(local: openai.OpenAI) -> None:
    """Leave the same KV-cache state behind before each of two calls to be compared.

    llama.cpp reuses the cached prefix of the previous prompt; a prompt evaluated in one batch
    and one evaluated as a single new token differ in float rounding, which can flip a greedy
    near-tie. Preceding both calls with the same other prompt makes their evaluations equal.
    """
    local.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=1
    )


def test_streaming(local: openai.OpenAI) -> None:
    _evaluate_other_prompt(local)
    chunks = list(
        local.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Name a colour."}],
            max_tokens=10,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:
        assert_matches("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    _evaluate_other_prompt(local)
    streamed = local.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a colour."}],
        max_tokens=10,
        temperature=0,
    )
    assert text == streamed.choices[0].message.content  # greedy: same text either way
    assert chunks[-1].usage.completion_tokens == streamed.usage.completion_tokens


def test_required_tool_call_validates(local: openai.OpenAI) -> None:
    completion = local.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])


def test_named_tool_call_streams_valid_arguments(local: openai.OpenAI) -> None:
    chunks = list(
        local.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Weather in Oslo, please."}],
            tools=[WEATHER_TOOL],
            temperature=0,
            stream=True,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert deltas[0].function.name == "get_weather" and deltas[0].index == 0
    arguments = "".join(d.function.arguments or "" for d in deltas)
    jsonschema.validate(json.loads(arguments), WEATHER_TOOL["function"]["parameters"])
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_json_schema_output_validates(local: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    completion = local.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
        temperature=0.7,
        seed=3,
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content), schema)


def test_two_concurrent_requests(local: openai.OpenAI) -> None:
    prompts = ["Say one.", "Say two."]

    def ask(prompt: str) -> openai.types.chat.ChatCompletion:
        return local.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=8,
            temperature=0,
        )

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        together = list(pool.map(ask, prompts))
    alone = [ask(prompt) for prompt in prompts]
    # Batched together: concurrency never mixes one answer into another.
    assert [c.choices[0].message.content for c in together] == [
        c.choices[0].message.content for c in alone
    ]


def test_disconnect_stops_generation(local_server: PortwayServer, local: openai.OpenAI) -> None:
    provider = provider_of(local_server)
    before = provider.tokens_generated
    with httpx.stream(
        "POST",
        f"{local_server.base_url}/chat/completions",
        json={
            "model": MODEL,
            "stream": True,
            "max_tokens": 3000,
            "logit_bias": {EOS_TOKEN: -100},
            "messages": [{"role": "user", "content": "Write a very long essay."}],
        },
        timeout=120,  # the first token can take seconds on a loaded CPU
    ) as response:
        lines = response.iter_lines()
        for _ in range(3):
            next(lines)
    # Another request is served alongside; the left one is dropped at its next token.
    local.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=2,
    )
    assert_stopped(provider, before)


def test_disconnect_stops_whole_generation(
    local_server: PortwayServer, local: openai.OpenAI
) -> None:
    """A non-streamed call whose client leaves mid-generation stops at the next token."""
    provider = provider_of(local_server)
    before = provider.tokens_generated
    body = json.dumps(
        {
            "model": MODEL,
            "max_tokens": 3000,
            "logit_bias": {EOS_TOKEN: -100},
            "messages": [{"role": "user", "content": "Write a very long essay."}],
        }
    ).encode()
    host, port = local_server.base_url.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: portway\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        deadline = time.monotonic() + 120
        while provider.tokens_generated - before < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert provider.tokens_generated - before >= 5, "generation never started"
    # Another request is served alongside; the left one is dropped at its next token.
    local.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert_stopped(provider, before)


def test_default_output_cap_without_max_tokens(local: openai.OpenAI) -> None:
    """No max_tokens: at most the deployment's max_output_tokens (512), not the window."""
    completion = local.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a long story."}],
        logit_bias={EOS_TOKEN: -100},
        temperature=0,
    )
    assert completion.usage is not None and completion.usage.completion_tokens == 512
    assert completion.choices[0].finish_reason == "length"


def test_configured_output_cap_and_n_limit(start_portway) -> None:
    server = start_portway(
        {
            "models": [
                {
                    "name": MODEL,
                    "provider": "local",
                    "max_output_tokens": 9,
                    "options": {"max_n": 2},
                }
            ]
        }
    )
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a long story."}],
        logit_bias={EOS_TOKEN: -100},
        n=2,
    )
    assert [c.finish_reason for c in completion.choices] == ["length", "length"]
    assert completion.usage is not None and completion.usage.completion_tokens == 18
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=1, n=3
        )
    assert caught.value.param == "n"
    assert provider_of(server).capabilities.max_output_tokens == 9


def test_context_length_exceeded_is_400(local: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        local.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=100_000,
        )
    assert caught.value.code == "context_length_exceeded"


def test_gguf_embedding_model(start_portway) -> None:
    server = start_portway(
        {
            "models": [
                {"name": "smol-embed", "provider": "local", "options": {"embedding": True}},
            ]
        }
    )
    client = server.sdk()
    result = client.embeddings.create(model="smol-embed", input=["red apple", "green pear"])
    assert_matches("CreateEmbeddingResponse", result.model_dump(exclude_unset=True))
    first, second = (item.embedding for item in result.data)
    assert len(first) == len(second) > 100 and first != second
    again = client.embeddings.create(model="smol-embed", input="red apple")
    assert again.data[0].embedding == pytest.approx(first, rel=1e-4)
    with pytest.raises(openai.BadRequestError):  # an embedding model does not chat
        client.chat.completions.create(
            model="smol-embed", messages=[{"role": "user", "content": "hi"}]
        )


async def test_accounting_counts_with_the_gguf_tokenizer(local_server: PortwayServer) -> None:
    services = local_server.app.state.services
    counter = await services.accounting.tokenizer.counter("local", MODEL)
    assert counter.exact
    text = "Grüße aus Köln: 東京タワーは高い。 Portway counts tokens."
    gguf_count = provider_of(local_server).count_tokens(text)
    assert counter.count_text(text) == gguf_count
    o200k = await services.accounting.tokenizer.counter("openai", "gpt-4o")
    assert o200k.count_text(text) != gguf_count  # a different vocabulary, not the estimate


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logit_bias": {"999999999": 5}}, "logit_bias"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "schema": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}},
                    },
                }
            },
            "response_format.json_schema.schema",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "weird"}}}
                ],
                "tool_choice": "required",
            },
            "tools[0].function.parameters",
        ),
        ({"n": 9}, "n"),
    ],
)
def test_requests_the_model_cannot_honour_are_400(
    local: openai.OpenAI, extra: dict, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        local.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=3, **extra
        )
    assert caught.value.param == param


def test_a_tool_call_cut_by_max_tokens_is_never_text(local: openai.OpenAI) -> None:
    """The unfinished call is reported as OpenAI does (the call so far, finish_reason
    length), never as the assistant's text (issue 9: its raw JSON became a message)."""
    request: dict = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Weather in Oslo, please."}],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 16,
        "temperature": 0,
    }
    chunks = list(local.chat.completions.create(**request, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert text == "" and finish[-1] == "length" and set(finish[:-1]) == {None}
    assert deltas[0].function.name == "get_weather"
    streamed_arguments = "".join(d.function.arguments or "" for d in deltas)
    with pytest.raises(json.JSONDecodeError):
        json.loads(streamed_arguments)  # cut: not a whole JSON object

    choice = local.chat.completions.create(**request).choices[0]
    assert choice.finish_reason == "length" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert call.function.arguments == streamed_arguments


def test_bounded_builtin_arguments_on_the_local_model(local: openai.OpenAI) -> None:
    """The bounds of the built-in tools' schemas become the decoding grammar, which
    llama.cpp accepts (a maxLength of 1,500 or more made it reject the grammar and crash),
    and a forced file_search query stays within its bound."""
    completion = local.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Search the files for every user id, all of them."}],
        tools=chat_tools([{"type": "file_search"}, {"type": "code_interpreter"}]),
        tool_choice={"type": "function", "function": {"name": "file_search"}},
        logit_bias={EOS_TOKEN: -100},
        max_tokens=600,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    query = json.loads(choice.message.tool_calls[0].function.arguments)["query"]
    assert 1 <= len(query) <= FILE_SEARCH_QUERY_MAX_CHARS
