"""Legacy text completions on the real local model (SmolLM2-135M): the raw prompt, no chat
template, whole and streamed, via the openai SDK against a real Portway."""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import pytest

from portway.providers.local import LocalProvider
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.providers.local_checks import assert_stopped

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
PROMPT = "The capital of France is"
NO_END = {"2": -100, "0": -100}  # SmolLM2's end tokens: a -100 bias keeps the model going


@pytest.fixture(scope="module")
def local_server(start_portway) -> PortwayServer:  # type: ignore[no-untyped-def]
    return start_portway({"models": [{"name": MODEL, "provider": "local"}]})


@pytest.fixture
def local(local_server: PortwayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_server.base_url, api_key="unused", max_retries=0)


def provider_of(server: PortwayServer) -> LocalProvider:
    provider = server.app.state.services.catalog.group(MODEL)[0].provider
    assert isinstance(provider, LocalProvider)
    return provider


def raw_tokens(server: PortwayServer, text: str) -> list[int]:
    llama = provider_of(server).loaded_model()
    return list(llama.tokenize(text.encode(), add_bos=True, special=True))


def test_a_raw_prompt_is_continued_without_the_chat_template(
    local: openai.OpenAI, local_server: PortwayServer
) -> None:
    completion = local.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8, temperature=0)
    assert_matches("CreateCompletionResponse", completion.model_dump(exclude_unset=True))
    [choice] = completion.choices
    assert choice.text and choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    # Exactly the prompt's own tokens: a chat template would add role markers around it.
    assert completion.usage.prompt_tokens == len(raw_tokens(local_server, PROMPT))
    assert 1 <= completion.usage.completion_tokens <= 8
    chat = local.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=1
    )
    assert chat.usage is not None and chat.usage.prompt_tokens > completion.usage.prompt_tokens


def test_the_default_max_tokens_is_16(local: openai.OpenAI) -> None:
    completion = local.completions.create(
        model=MODEL, prompt="Once upon a time", temperature=0, logit_bias={"2": -100, "0": -100}
    )
    assert completion.usage is not None and completion.usage.completion_tokens == 16
    assert completion.choices[0].finish_reason == "length"


def test_streamed_text_equals_the_whole_answer_and_counts_usage(local: openai.OpenAI) -> None:
    whole = local.completions.create(model=MODEL, prompt=PROMPT, max_tokens=10, temperature=0)
    stream = local.completions.create(
        model=MODEL,
        prompt=PROMPT,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk.model_dump(exclude_unset=True) for chunk in stream]
    for chunk in chunks:
        choices = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk["choices"]]
        assert_matches("CreateCompletionResponse", {**chunk, "choices": choices})
    assert "".join(c["text"] for chunk in chunks for c in chunk["choices"]) == whole.choices[0].text
    assert chunks[-2]["choices"][0]["finish_reason"] == whole.choices[0].finish_reason
    assert chunks[-1]["choices"] == []
    assert whole.usage is not None
    assert chunks[-1]["usage"] == whole.usage.model_dump(exclude_unset=True)


def test_echo_token_prompts_and_max_tokens_zero(
    local: openai.OpenAI, local_server: PortwayServer
) -> None:
    echoed = local.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=0, echo=True, temperature=0
    )
    assert echoed.choices[0].text == PROMPT
    assert echoed.usage is not None and echoed.usage.completion_tokens == 0
    by_text = local.completions.create(model=MODEL, prompt=PROMPT, max_tokens=6, temperature=0)
    by_ids = local.completions.create(
        model=MODEL, prompt=raw_tokens(local_server, PROMPT), max_tokens=6, temperature=0
    )
    assert by_ids.choices[0].text == by_text.choices[0].text
    both = local.completions.create(
        model=MODEL, prompt=[PROMPT, "2 + 2 ="], n=2, max_tokens=3, temperature=0, echo=True
    )
    assert [c.index for c in both.choices] == [0, 1, 2, 3]
    prompts = [PROMPT, PROMPT, "2 + 2 =", "2 + 2 ="]
    assert all(c.text.startswith(p) for c, p in zip(both.choices, prompts, strict=True))


def test_stop_sequences_end_the_text(local: openai.OpenAI) -> None:
    free = local.completions.create(model=MODEL, prompt="1, 2, 3,", max_tokens=12, temperature=0)
    text = free.choices[0].text
    assert len(text.strip()) >= 2
    stop = text.strip()[1]
    stopped = local.completions.create(
        model=MODEL, prompt="1, 2, 3,", max_tokens=12, temperature=0, stop=[stop]
    )
    assert stop not in stopped.choices[0].text
    assert stopped.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logprobs": 1}, "logprobs"),
        ({"suffix": "."}, "suffix"),
        ({"best_of": 2}, "best_of"),
        ({"prompt": [[1, 99999999]]}, "prompt"),
        ({"max_tokens": 100000}, "prompt"),
        ({"n": 2, "stream": True}, "n"),
        ({"prompt": ["a", "b"], "stream": True}, "prompt"),
        # Every choice of every prompt is a generation: at most max_n (8) of them.
        ({"prompt": [PROMPT] * 3, "n": 3, "max_tokens": 1}, "n"),
        ({"prompt": [PROMPT] * 9, "max_tokens": 1}, "prompt"),
    ],
)
def test_what_the_local_model_cannot_do_is_a_400(
    local_server: PortwayServer, extra: dict[str, object], param: str
) -> None:
    response = httpx.post(
        f"{local_server.base_url}/completions",
        json={"model": MODEL, "prompt": PROMPT, **extra},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_completions_are_in_the_ledger_with_exact_usage(local_server: PortwayServer) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key="unused", max_retries=0)
    answer = client.completions.create(model=MODEL, prompt="Hello", max_tokens=4)
    assert answer.usage is not None
    rows = httpx.get(f"{local_server.base_url}/usage", params={"group_by": "endpoint"}).json()[
        "data"
    ]
    row = next(row for row in rows if row["endpoint"] == "completions")
    assert row["requests"] >= 1 and row["completion_tokens"] >= answer.usage.completion_tokens


def test_max_tokens_null_is_capped_at_the_local_default(local: openai.OpenAI) -> None:
    """``max_tokens: null`` leaves the cap to the deployment: 512 on a local model."""
    completion = local.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=None, temperature=0, logit_bias=NO_END
    )
    assert completion.usage is not None and completion.usage.completion_tokens == 512
    assert completion.choices[0].finish_reason == "length"


def test_a_client_that_leaves_a_whole_completion_stops_generation(
    local_server: PortwayServer, local: openai.OpenAI
) -> None:
    """A non-streamed completion whose client leaves mid-generation stops at the next token."""
    provider = provider_of(local_server)
    before = provider.tokens_generated
    body = json.dumps(
        {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 3000, "logit_bias": NO_END}
    ).encode()
    host, port = local_server.base_url.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: portway\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        deadline = time.monotonic() + 120
        while provider.tokens_generated - before < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert provider.tokens_generated - before >= 5, "generation never started"
    # Another call is served alongside; the left one is dropped at its next token.
    local.completions.create(model=MODEL, prompt=PROMPT, max_tokens=2)
    assert_stopped(provider, before)
