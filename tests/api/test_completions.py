"""Legacy `POST /v1/completions` through the one door, via the official SDK: passed through to
OpenAI-compatible upstreams, mapped to chat for chat-only providers, limited, budgeted,
routed and in the ledger like every other operation."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.anthropic_upstream import Reply as ClaudeReply
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply, TextReply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

MASTER = "sk-master-test"
PRICE = {"input": 1000.0, "output": 1000.0}  # $0.001 per token: easy budgets


@pytest.fixture(scope="module")
def door(
    start_portway: PortwayFactory,
    fake_openai_server: FakeOpenAI,
    backup_upstream: FakeOpenAI,
    fake_anthropic_server: FakeAnthropic,
) -> PortwayServer:
    primary, second = fake_openai_server.base_url, backup_upstream.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "keys": {"cache_ttl_seconds": 0.2},
            "models": [
                fake_model("instruct", primary, pricing=PRICE),
                fake_model("pair", primary, pricing=PRICE, priority=0),
                fake_model("pair", second, pricing=PRICE, priority=1),
                fake_model("main", primary, pricing=PRICE),
                fake_model("backup", second, pricing=PRICE),
                # An OpenAI-compatible server without /v1/completions: mapped to chat.
                fake_model("chat-only", primary, pricing=PRICE, supports_completions=False),
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-x",
                    "base_url": fake_anthropic_server.base_url,
                    "api_key": "x",
                    "pricing": PRICE,
                },
            ],
            "router": {
                "pair": {"strategy": "priority", "retries": 1},
                "main": {"retries": 0, "fallbacks": ["backup"]},
                "smart": {"rules": [{"use": "instruct"}]},
            },
        }
    )


def admin(server: PortwayServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {MASTER}"})


def create_key(server: PortwayServer, **fields: Any) -> dict[str, Any]:
    with admin(server) as http:
        response = http.post("/v1/admin/keys", json=fields)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def usage(server: PortwayServer, group_by: str, **filters: str) -> list[dict[str, Any]]:
    with admin(server) as http:
        response = http.get("/v1/admin/usage", params={"group_by": group_by, **filters})
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def sdk(server: PortwayServer, key: str = MASTER) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def post(server: PortwayServer, body: Any, key: str = MASTER) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def assert_openai_error(response: httpx.Response, status: int, param: str | None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["message"]
    return error["message"]  # type: ignore[no-any-return]


def assert_chunk(chunk: dict[str, Any]) -> None:
    """A stream chunk is a ``text_completion``; OpenAI's own chunks carry a null
    ``finish_reason`` until a choice ends, which its spec's enum leaves out."""
    choices = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk["choices"]]
    assert_matches("CreateCompletionResponse", {**chunk, "choices": choices})


def sse_chunks(response: httpx.Response) -> list[dict[str, Any]]:
    lines = [line for line in response.text.split("\n") if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[len("data: ") :]) for line in lines[:-1]]


# Passed through to an OpenAI-compatible upstream ---------------------------------------


def test_a_text_completion_is_passed_through(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    completion = sdk(door).completions.create(model="instruct", prompt="Once upon a time")
    assert_matches("CreateCompletionResponse", completion.model_dump(exclude_unset=True))
    assert completion.object == "text_completion" and completion.model == "instruct"
    assert completion.choices[0].text == " completed: Once upon a time"
    assert completion.usage is not None and completion.usage.total_tokens == 10
    [sent] = fake_openai.requests
    assert sent.path == "/v1/completions"
    # The client's body as sent (max_tokens left to the upstream's own default of 16).
    assert sent.body == {
        "model": "upstream-instruct",
        "prompt": "Once upon a time",
        "stream": False,
    }


def test_a_completion_cut_by_max_tokens_says_length(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script_completions(TextReply(text=" and so on", completion_tokens=9))
    completion = sdk(door).completions.create(model="instruct", prompt="p", max_tokens=3)
    assert (completion.choices[0].text, completion.choices[0].finish_reason) == (
        " and so on",
        "length",
    )
    assert fake_openai.requests[-1].body["max_tokens"] == 3


def test_max_tokens_null_sends_the_deployment_cap_the_budget_assumed(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    response = post(door, {"model": "instruct", "prompt": "p", "max_tokens": None})
    assert response.status_code == 200, response.text
    assert fake_openai.requests[-1].body["max_tokens"] == 4096  # the default output cap


def test_arrays_of_prompts_and_token_ids_pass_through(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    client = sdk(door)
    many = client.completions.create(model="instruct", prompt=["a", "b"], n=2, max_tokens=8)
    assert [(c.index, c.text) for c in many.choices] == [
        (0, " completed: a"),
        (1, " completed: a"),
        (2, " completed: b"),
        (3, " completed: b"),
    ]
    tokens = client.completions.create(model="instruct", prompt=[[1, 2], [3]], max_tokens=8)
    assert [c.text for c in tokens.choices] == [" completed: <1><2>", " completed: <3>"]
    assert fake_openai.requests[-1].body["prompt"] == [[1, 2], [3]]


def test_echo_logprobs_and_suffix_reach_a_native_upstream(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    completion = sdk(door).completions.create(
        model="instruct", prompt="Hi", echo=True, logprobs=2, suffix="!", best_of=2, n=1
    )
    assert_matches("CreateCompletionResponse", completion.model_dump(exclude_unset=True))
    assert completion.choices[0].text == "Hi completed: Hi"
    assert completion.choices[0].logprobs is not None
    sent = fake_openai.requests[-1].body
    assert (sent["echo"], sent["logprobs"], sent["suffix"], sent["best_of"]) == (True, 2, "!", 2)


def test_a_streamed_completion_is_text_completion_chunks(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    stream = sdk(door).completions.create(
        model="instruct", prompt="abcdef", stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk.model_dump(exclude_unset=True) for chunk in stream]
    for chunk in chunks:
        assert_chunk(chunk)
        assert chunk["object"] == "text_completion" and chunk["model"] == "instruct"
    text = "".join(c["text"] for chunk in chunks for c in chunk["choices"])
    assert text == " completed: abcdef"
    assert [c["finish_reason"] for c in chunks[-2]["choices"]] == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 10
    # Portway asks for usage upstream whatever the client asked (accounting needs it).
    assert fake_openai.requests[-1].body["stream_options"] == {"include_usage": True}


def test_a_stream_shows_usage_only_when_asked(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    response = post(door, {"model": "instruct", "prompt": "xyz", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(response)
    assert all(chunk["choices"] and "usage" not in chunk for chunk in chunks)
    assert fake_openai.requests[-1].body["stream_options"] == {"include_usage": True}


def test_a_client_that_leaves_mid_stream_cancels_the_upstream_and_gets_a_ledger_row(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    # Over 64k characters per chunk: counting the output the client got takes a thread, so
    # the row is written after the request's task was cancelled (it used to be lost).
    fake_openai.script_completions(TextReply(text="word " * 40_000, chunk_delay=0.5))
    key = create_key(door)
    with httpx.stream(
        "POST",
        f"{door.base_url}/completions",
        json={"model": "instruct", "prompt": "long", "stream": True},
        headers={"authorization": f"Bearer {key['key']}"},
    ) as response:
        next(response.iter_lines())
    for _ in range(100):
        if fake_openai.disconnects:
            break
        time.sleep(0.05)
    assert fake_openai.disconnects == 1
    for _ in range(100):
        rows = usage(door, "endpoint,status", key=key["id"])
        if rows:
            break
        time.sleep(0.05)
    assert [(row["endpoint"], row["status"]) for row in rows] == [("completions", 499)]
    assert rows[0]["completion_tokens"] >= 13_000  # the first chunk's words, counted


# Routing: retries, fallbacks, upstream errors -------------------------------------------


def test_a_failed_attempt_is_retried_on_another_deployment(
    door: PortwayServer, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    fake_openai.script_completions(Fail(500))
    response = post(door, {"model": "pair", "prompt": "p"})
    assert response.status_code == 200, response.text
    assert_matches("CreateCompletionResponse", response.json())
    assert response.headers["x-portway-attempts"] == "2"
    assert response.headers["x-portway-deployment"] == "pair#1"
    assert [r.path for r in backup.requests] == ["/v1/completions"]


def test_a_failing_group_falls_back_for_streams_too(
    door: PortwayServer, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    fake_openai.script_completions(Fail(503))
    response = post(door, {"model": "main", "prompt": "p", "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["x-portway-fallback"] == "backup"
    assert {chunk["model"] for chunk in sse_chunks(response)} == {"backup"}
    assert len(backup.requests) == 1


def test_an_upstream_client_error_reaches_the_client_in_openai_shape(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script_completions(
        Fail(400, "bad prompt", code="invalid_value", error_type="invalid_request_error")
    )
    response = post(door, {"model": "instruct", "prompt": "p"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "upstream_bad_request"


# Limits, budgets, ledger ----------------------------------------------------------------


def test_completions_are_in_the_ledger_with_their_endpoint(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door, user="legacy-user")
    client = sdk(door, key["key"])
    client.completions.create(model="instruct", prompt="one", max_tokens=5)
    list(client.completions.create(model="instruct", prompt="two", max_tokens=5, stream=True))
    own = httpx.get(
        f"{door.base_url}/usage",
        params={"group_by": "endpoint,model"},
        headers={"authorization": f"Bearer {key['key']}"},
    ).json()["data"]
    assert own == [
        {
            **own[0],
            "endpoint": "completions",
            "model": "instruct",
            "requests": 2,
            "prompt_tokens": 12,
            "completion_tokens": 8,
            "errors": 0,
        }
    ]
    assert own[0]["cost"] == pytest.approx(0.020)


def test_the_rpm_limit_applies_to_completions(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    key = create_key(door, rpm=1)["key"]
    assert post(door, {"model": "instruct", "prompt": "a"}, key).status_code == 200
    limited = post(door, {"model": "instruct", "prompt": "a"}, key)
    assert_openai_error(limited, 429, None)
    assert "retry-after" in limited.headers
    assert len(fake_openai.requests) == 1


def test_an_exhausted_budget_refuses_completions(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door, max_budget=0.0, budget_period="daily")
    response = post(door, {"model": "instruct", "prompt": "a"}, key["key"])
    assert_openai_error(response, 429, None)
    assert response.json()["error"]["code"] == "insufficient_quota"
    assert fake_openai.requests == []
    [row] = usage(door, "endpoint,status", key=key["id"])
    assert (row["endpoint"], row["status"]) == ("completions", 429)


def test_the_budget_hold_assumes_16_tokens_per_choice_by_default(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    # "hi" is 1 token; with the default max_tokens (16) the worst case of 2 prompts x
    # best_of 3 is 2 + 6 * 16 = 98 tokens ($0.098): over a $0.05 budget, refused.
    key = create_key(door, max_budget=0.05, budget_period="daily")
    refused = post(door, {"model": "instruct", "prompt": ["hi", "hi"], "best_of": 3}, key["key"])
    assert_openai_error(refused, 429, None)
    allowed = post(door, {"model": "instruct", "prompt": "hi", "max_tokens": 4}, key["key"])
    assert allowed.status_code == 200, allowed.text
    with admin(door) as http:
        budget = http.get(f"/v1/admin/keys/{key['id']}").json()["budget"]
    assert budget["spend"] == pytest.approx(0.010) and budget["reserved"] == 0


# Bad input: 400 with the param, never 5xx -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "instruct"}, "prompt"),
        ({"prompt": "x"}, "model"),
        ({"model": "instruct", "prompt": []}, "prompt"),
        ({"model": "instruct", "prompt": [[1], []]}, "prompt"),
        ({"model": "instruct", "prompt": {"text": "x"}}, "prompt"),
        ({"model": "instruct", "prompt": [1, "x"]}, "prompt[0]"),
        ({"model": "instruct", "prompt": "x", "max_tokens": -1}, "max_tokens"),
        ({"model": "instruct", "prompt": "x", "max_tokens": "16"}, "max_tokens"),
        ({"model": "instruct", "prompt": "x", "n": 0}, "n"),
        ({"model": "instruct", "prompt": "x", "logprobs": 6}, "logprobs"),
        ({"model": "instruct", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "instruct", "prompt": "x", "logit_bias": {"abc": 1}}, "logit_bias"),
        ({"model": "instruct", "prompt": "x", "n": 3, "best_of": 2}, "best_of"),
        ({"model": "instruct", "prompt": "x", "best_of": 2, "stream": True}, "best_of"),
        ({"model": "instruct", "prompt": "x", "echo": "yes"}, "echo"),
        ({"model": "instruct", "prompt": None}, "prompt"),
        ({"model": "instruct", "prompt": [[1, "a"]]}, "prompt[0][1]"),
        ({"model": "instruct", "prompt": [["a"]]}, "prompt[0][0]"),
        ({"model": "instruct", "prompt": "x", "stream_options": "x"}, "stream_options"),
        ({"model": "instruct", "prompt": "x", "logit_bias": {"1": "x"}}, "logit_bias.1"),
        ({"model": "instruct", "prompt": "x", "suffix": 5}, "suffix"),
        ({"model": "instruct", "prompt": "x", "best_of": 21}, "best_of"),
        ({"model": "instruct", "prompt": "x", "temperature": 3}, "temperature"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(
    door: PortwayServer, fake_openai: FakeOpenAI, body: dict[str, Any], param: str
) -> None:
    assert_openai_error(post(door, body), 400, param)
    assert fake_openai.requests == []


def test_a_body_that_is_not_json_is_a_400(door: PortwayServer) -> None:
    response = httpx.post(
        f"{door.base_url}/completions",
        content=b"{nope",
        headers={"authorization": f"Bearer {MASTER}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_completions_need_a_key_and_a_model_the_key_may_use(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    assert_openai_error(post(door, {"model": "instruct", "prompt": "x"}, key="sk-wrong"), 401, None)
    key = create_key(door, models=["claude"])["key"]
    assert_openai_error(post(door, {"model": "instruct", "prompt": "x"}, key), 404, "model")
    assert fake_openai.requests == []


def test_unknown_models_and_virtual_models_are_refused(door: PortwayServer) -> None:
    assert_openai_error(post(door, {"model": "nope", "prompt": "x"}), 404, "model")
    message = assert_openai_error(post(door, {"model": "smart", "prompt": "x"}), 400, "model")
    assert "text completions" in message


# Chat-only providers: one user message per prompt -----------------------------------------


def test_a_chat_only_provider_gets_one_user_message_per_prompt(
    door: PortwayServer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(ClaudeReply(text="first"), ClaudeReply(text="second"))
    completion = sdk(door).completions.create(
        model="claude", prompt=["Write a haiku", "Now a limerick"], max_tokens=30, stop=["END"]
    )
    assert_matches("CreateCompletionResponse", completion.model_dump(exclude_unset=True))
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
        (0, "first", "stop"),
        (1, "second", "stop"),
    ]
    bodies = [r.body for r in fake_anthropic.requests]
    assert [b["messages"] for b in bodies] == [
        [{"role": "user", "content": [{"type": "text", "text": "Write a haiku"}]}],
        [{"role": "user", "content": [{"type": "text", "text": "Now a limerick"}]}],
    ]
    assert {b["max_tokens"] for b in bodies} == {30}
    assert bodies[0]["stop_sequences"] == ["END"]
    # Usage is the sum over the calls (11 input + 6 output tokens each).
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (22, 12)


def test_a_chat_only_provider_streams_text_completion_chunks(
    door: PortwayServer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(ClaudeReply(text="a streamed answer"))
    stream = sdk(door).completions.create(
        model="claude", prompt="go", stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk.model_dump(exclude_unset=True) for chunk in stream]
    for chunk in chunks:
        assert_chunk(chunk)
    assert "".join(c["text"] for chunk in chunks for c in chunk["choices"]) == "a streamed answer"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    assert fake_anthropic.requests[-1].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "go"}]}
    ]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"echo": True}, "echo"),
        ({"logprobs": 1}, "logprobs"),
        ({"suffix": "end"}, "suffix"),
        ({"best_of": 2}, "best_of"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
@pytest.mark.parametrize("model", ["claude", "chat-only"])
def test_what_chat_cannot_honour_is_a_400_before_any_call(
    door: PortwayServer,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    model: str,
    extra: dict[str, Any],
    param: str,
) -> None:
    response = post(door, {"model": model, "prompt": "p", **extra})
    message = assert_openai_error(response, 400, param)
    assert model in message
    assert fake_anthropic.requests == [] and fake_openai.requests == []


def test_an_openai_compatible_upstream_without_completions_is_mapped_to_chat(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="mapped", completion_tokens=3))
    completion = sdk(door).completions.create(model="chat-only", prompt="hello", max_tokens=9)
    assert completion.choices[0].text == "mapped"
    [sent] = fake_openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == [{"role": "user", "content": "hello"}]
    assert sent.body["max_tokens"] == 9
