"""The exact cache through real HTTP: keys, policies, bypass headers, TTLs, tenancy, admin."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.cache.conftest import CacheServerFactory, ask, sdk
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def server(serve_cached: CacheServerFactory) -> PortwayServer:
    return serve_cached(models={"fake-gpt-2": {"mode": "always", "ttl": 600}})


@pytest.fixture
def client(server: PortwayServer) -> openai.OpenAI:
    return sdk(server)


def test_second_identical_call_is_a_hit(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    status, first, _ = ask(client, prompt)
    assert status == "miss"
    status, second, headers = ask(client, prompt)
    assert status == "hit"
    assert len(fake_openai.requests) == 1
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.id != first.id and second.id.startswith("chatcmpl-")
    assert second.model == "fake-gpt"
    assert second.usage.prompt_tokens == first.usage.prompt_tokens
    assert second.usage.completion_tokens == first.usage.completion_tokens
    assert second.usage.prompt_tokens_details.cached_tokens == first.usage.prompt_tokens
    assert "x-portway-deployment" not in headers
    assert_matches("CreateChatCompletionResponse", second.model_dump(exclude_unset=True))


# Each variant differs from the base request in fields that can change the answer.
KEY_VARIANTS: dict[str, dict[str, Any]] = {
    "model": {"model": "fake-gpt-2"},
    "system prompt": {"system": "be brief"},
    "content parts": {"parts": True},
    "temperature": {"temperature": 0.3},
    "top_p": {"top_p": 0.5},
    "seed": {"seed": 2},
    "max_tokens": {"max_tokens": 10},
    "max_completion_tokens": {"max_completion_tokens": 11},
    "stop": {"stop": ["END"]},
    "n": {"n": 2},
    "presence_penalty": {"presence_penalty": 0.5},
    "frequency_penalty": {"frequency_penalty": 0.5},
    "logit_bias": {"logit_bias": {"50256": -100}},
    "logprobs": {"logprobs": True},
    "top_logprobs": {"logprobs": True, "top_logprobs": 2},
    "tools": {"tools": TOOLS},
    "tool_choice": {"tools": TOOLS, "tool_choice": "required"},
    "parallel_tool_calls": {"tools": TOOLS, "parallel_tool_calls": False},
    "response_format": {"response_format": {"type": "json_object"}},
    "unknown extra field": {"extra_body": {"top_k": 20}},
}


def _call(client: openai.OpenAI, prompt: str, variant: dict[str, Any]) -> str | None:
    params = {"seed": 1, "temperature": 0, **variant}
    user: dict[str, Any] = {"role": "user", "content": prompt}
    if params.pop("parts", False):
        user["content"] = [{"type": "text", "text": prompt}]
    messages = [user]
    system = params.pop("system", None)
    if system:
        messages.insert(0, {"role": "system", "content": system})
    status, _, _ = ask(client, prompt, messages=messages, **params)
    return status


@pytest.mark.parametrize("name", list(KEY_VARIANTS))
def test_every_output_parameter_changes_the_key(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str, name: str
) -> None:
    variant = KEY_VARIANTS[name]
    assert _call(client, prompt, {}) == "miss"
    assert _call(client, prompt, variant) == "miss"
    assert len(fake_openai.requests) == 2
    assert _call(client, prompt, variant) == "hit"
    assert _call(client, prompt, {}) == "hit"
    assert len(fake_openai.requests) == 2


# Pairs that read differently but ask for the same answer.
SAME_KEY: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "user": ({}, {"user": "someone"}),
    "metadata": ({}, {"metadata": {"trace": "1"}}),
    "store": ({}, {"store": True}),
    "service_tier": ({}, {"extra_body": {"service_tier": "flex"}}),
    "max_tokens spelling": ({"max_tokens": 9}, {"max_completion_tokens": 9}),
    "stop spelling": ({"stop": "END"}, {"stop": ["END"]}),
    "n=1": ({}, {"n": 1}),
}


@pytest.mark.parametrize("name", list(SAME_KEY))
def test_delivery_fields_do_not_change_the_key(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str, name: str
) -> None:
    first, second = SAME_KEY[name]
    assert _call(client, prompt, first) == "miss"
    assert _call(client, prompt, second) == "hit"
    assert len(fake_openai.requests) == 1


def test_deterministic_mode_skips_sampled_requests(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    for _ in range(2):
        status, _, _ = ask(client, prompt, temperature=0.7)
        assert status == "bypass"
    assert len(fake_openai.requests) == 2
    assert ask(client, prompt, temperature=0.7, seed=3)[0] == "miss"
    assert ask(client, prompt, temperature=0.7, seed=3)[0] == "hit"


def test_always_mode_per_model(client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str) -> None:
    assert ask(client, prompt, model="fake-gpt-2", temperature=0.9)[0] == "miss"
    assert ask(client, prompt, model="fake-gpt-2", temperature=0.9)[0] == "hit"
    assert len(fake_openai.requests) == 1


def test_no_cache_refreshes_the_entry(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    ask(client, prompt)
    fake_openai.script(Reply(content="fresher"))
    status, completion, _ = ask(client, prompt, headers={"Cache-Control": "no-cache"})
    assert status == "bypass" and completion.choices[0].message.content == "fresher"
    status, completion, _ = ask(client, prompt)
    assert status == "hit" and completion.choices[0].message.content == "fresher"
    fake_openai.script(Reply(content="freshest"))
    status, completion, _ = ask(client, prompt, headers={"x-portway-cache": "refresh"})
    assert status == "bypass" and completion.choices[0].message.content == "freshest"
    assert ask(client, prompt)[1].choices[0].message.content == "freshest"
    assert len(fake_openai.requests) == 3


@pytest.mark.parametrize(
    "headers", [{"Cache-Control": "no-store"}, {"x-portway-cache": "bypass"}], ids=str
)
def test_no_store_neither_reads_nor_writes(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str, headers: dict[str, str]
) -> None:
    assert ask(client, prompt, headers=headers)[0] == "bypass"
    assert ask(client, prompt)[0] == "miss"
    assert ask(client, prompt, headers=headers)[0] == "bypass"
    assert len(fake_openai.requests) == 3


@pytest.mark.parametrize(
    ("header", "value"),
    [("x-portway-cache", "sometimes"), ("x-portway-cache-ttl", "-1"), ("x-portway-cache-ttl", "x")],
)
def test_bad_cache_headers_are_400(
    client: openai.OpenAI, prompt: str, header: str, value: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, prompt, headers={header: value})
    assert caught.value.body["param"] == header


def test_ttl_header_expires_entries(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    short = {"x-portway-cache-ttl": "0.2"}
    assert ask(client, prompt, headers=short)[0] == "miss"
    assert ask(client, prompt)[0] == "hit"
    time.sleep(0.25)
    assert ask(client, prompt)[0] == "miss"
    assert len(fake_openai.requests) == 2


def test_tenants_never_share_entries(
    server: PortwayServer, fake_openai: FakeOpenAI, prompt: str
) -> None:
    team_a, team_b = sdk(server, "key-a"), sdk(server, "key-b")
    assert ask(team_a, prompt)[0] == "miss"
    assert ask(team_b, prompt)[0] == "miss"
    assert ask(team_a, prompt)[0] == "hit"
    assert ask(team_b, prompt)[0] == "hit"
    assert ask(sdk(server), prompt)[0] == "miss"
    assert len(fake_openai.requests) == 3


def test_client_sub_namespaces(client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str) -> None:
    one, two = {"x-portway-cache-namespace": "one"}, {"x-portway-cache-namespace": "two"}
    assert ask(client, prompt, headers=one)[0] == "miss"
    assert ask(client, prompt, headers=two)[0] == "miss"
    assert ask(client, prompt, headers=one)[0] == "hit"
    assert ask(client, prompt)[0] == "miss"
    assert len(fake_openai.requests) == 3


def test_upstream_errors_are_not_cached(
    client: openai.OpenAI, fake_openai: FakeOpenAI, prompt: str
) -> None:
    fake_openai.script(Fail(status=400, message="nope", error_type="invalid_request_error"))
    with pytest.raises(openai.BadRequestError):
        ask(client, prompt)
    assert ask(client, prompt)[0] == "miss"


def test_admin_stats_and_purge(server: PortwayServer, fake_openai: FakeOpenAI, prompt: str) -> None:
    team_a, team_b = sdk(server, "key-a"), sdk(server, "key-b")
    ask(team_a, prompt)
    ask(team_a, prompt)
    ask(team_a, prompt, model="fake-gpt-2")
    ask(team_b, prompt)
    stats = httpx.get(f"{server.base_url}/admin/cache/stats").json()
    assert stats["backend"] == "memory" and stats["entries"] >= 2 and stats["bytes"] > 0
    assert stats["hits"] >= 1 and 0 < stats["hit_rate"] <= 1
    assert stats["saved_tokens"]["total"] >= 12
    # Team keys are not admins.
    denied = httpx.get(
        f"{server.base_url}/admin/cache/stats", headers={"Authorization": "Bearer key-a"}
    )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    purged = httpx.delete(
        f"{server.base_url}/admin/cache", params={"namespace": "team-a", "model": "fake-gpt"}
    ).json()
    assert purged["deleted"] >= 1
    assert ask(team_a, prompt)[0] == "miss"
    assert ask(team_b, prompt)[0] == "hit"
    assert ask(team_a, prompt, model="fake-gpt-2")[0] == "hit"
    purged = httpx.delete(f"{server.base_url}/admin/cache", params={"model": "fake-gpt-2"}).json()
    assert purged["deleted"] >= 1
    assert ask(team_a, prompt, model="fake-gpt-2")[0] == "miss"


def test_uncached_server_has_no_cache_header(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    client = gateway.sdk("x")
    status, _, _ = ask(client, "plain")
    assert status is None
    assert httpx.get(f"{gateway.base_url}/admin/cache/stats").json()["enabled"] is False
