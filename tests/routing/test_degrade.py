"""Graceful degradation when no deployment can answer: message, stale answer, 503."""

from __future__ import annotations

import json
from typing import Any

import pytest

from portway.config import ModelConfig
from portway.errors import ServiceUnavailableError
from portway.pipeline.base import CallContext
from portway.protocol.chat import ChatCompletionDict, ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.config import GroupRouteConfig
from portway.routing.degrade import static_completion
from portway.routing.router import Router
from portway.security.principal import ANONYMOUS
from tests.fakes.openai_upstream import Fail
from tests.fakes.server import refused_base_url
from tests.openapi import assert_matches
from tests.routing.conftest import deployment

DOWN = {"retries": 1, "backoff": {"base": "5ms", "max": "10ms"}}
MESSAGE = "The assistant is busy; please try again shortly."


def test_static_message_when_everything_is_down(gateway_for) -> None:
    gateway = gateway_for(
        [deployment("chat", refused_base_url()), deployment("chat", refused_base_url())],
        {"chat": {**DOWN, "degrade": {"message": MESSAGE}}},
    )
    response = gateway.chat("chat")
    assert response.status_code == 200
    assert response.headers["x-portway-degraded"] == "true"
    assert response.headers["x-portway-attempts"] == "2"
    body = response.json()
    assert body["choices"][0]["message"]["content"] == MESSAGE
    assert body["model"] == "chat"
    assert_matches("CreateChatCompletionResponse", body)


def test_static_message_streams_as_chunks(gateway_for) -> None:
    gateway = gateway_for(
        [deployment("chat", refused_base_url())],
        {"chat": {**DOWN, "degrade": {"message": MESSAGE}}},
    )
    response, events = gateway.stream_events("chat", stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["x-portway-degraded"] == "true"
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        assert_matches("CreateChatCompletionStreamResponse", chunk)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == MESSAGE
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 0


def test_503_with_retry_after_when_configured(gateway_for) -> None:
    gateway = gateway_for(
        [deployment("chat", refused_base_url())],
        {"chat": {**DOWN, "degrade": {"retry_after": "7s"}}},
    )
    response = gateway.chat("chat")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert_matches("ErrorResponse", response.json())


def test_all_circuits_open_gives_503_with_the_time_left(gateway_for, upstreams) -> None:
    upstreams[0].default = upstreams[1].default = Fail(500)
    gateway = gateway_for(
        [deployment("chat", upstreams[0]), deployment("chat", upstreams[1])],
        {"chat": {**DOWN, "breaker": {"consecutive_failures": 1, "cooldown": "20s"}}},
    )
    assert gateway.chat("chat").status_code == 502  # both tried, both failed: both open now
    seen = len(upstreams[0].requests) + len(upstreams[1].requests)
    response = gateway.chat("chat")
    assert response.status_code == 503
    assert 15 <= int(response.headers["retry-after"]) <= 20
    assert response.headers["x-portway-attempts"] == "0"
    assert len(upstreams[0].requests) + len(upstreams[1].requests) == seen


class StaleAnswers:
    """A stand-in for the cache stage's stale-answer hook."""

    def __init__(self, answer: ChatCompletionDict | None) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def stale_answer(self, ctx: CallContext) -> ChatCompletionDict | None:
        self.asked.append(ctx.request_id)
        return self.answer


def _router(stale: StaleAnswers, degrade: dict[str, Any]) -> Router:
    config = ModelConfig.model_validate(deployment("chat", refused_base_url()))
    catalog = ModelCatalog.from_configs([config], ProviderRegistry())
    route = GroupRouteConfig.model_validate({**DOWN, "degrade": degrade})
    return Router(catalog, {"chat": route}, stale_source=stale)


def _ctx() -> CallContext:
    request = ChatCompletionRequest.model_validate(
        {"model": "chat", "messages": [{"role": "user", "content": "cached question"}]}
    )
    return CallContext(request_id="req_stale", principal=ANONYMOUS, request=request)


@pytest.mark.parametrize("have_stale", [True, False])
async def test_stale_answer_hook(have_stale: bool) -> None:
    old = static_completion("chat", "an answer from yesterday")
    stale = StaleAnswers(old if have_stale else None)
    router = _router(stale, {"stale": True, "message": MESSAGE})
    await router._catalog.start()
    try:
        ctx = _ctx()
        completion = await router.complete(ctx, None)  # type: ignore[arg-type]
    finally:
        await router._catalog.close()
    assert stale.asked == ["req_stale"]
    assert ctx.response_headers["x-portway-degraded"] == "true"
    expected = "an answer from yesterday" if have_stale else MESSAGE
    assert completion["choices"][0]["message"]["content"] == expected
    assert (ctx.cache_status == "stale") is have_stale


async def test_stale_only_without_an_answer_is_a_503() -> None:
    router = _router(StaleAnswers(None), {"stale": True})
    await router._catalog.start()
    try:
        with pytest.raises(ServiceUnavailableError) as raised:
            await router.complete(_ctx(), None)  # type: ignore[arg-type]
    finally:
        await router._catalog.close()
    assert raised.value.headers["retry-after"] == "1"


def test_stale_cached_answer_when_everything_is_down(gateway_for, upstreams) -> None:
    import time

    fake = upstreams[0]
    gateway = gateway_for(
        [deployment("chat", fake)],
        {"chat": {**DOWN, "degrade": {"stale": True, "message": MESSAGE}}},
        cache={"enabled": True, "ttl": 0.2, "mode": "always"},
    )
    fresh = gateway.chat("chat", "what is the capital of France?")
    assert fresh.status_code == 200 and "x-portway-degraded" not in fresh.headers
    time.sleep(0.3)  # past the TTL: only the stale window keeps the answer
    fake.default = Fail(500)
    stale = gateway.chat("chat", "what is the capital of France?")
    assert stale.status_code == 200
    assert stale.headers["x-portway-degraded"] == "true"
    assert (
        stale.json()["choices"][0]["message"]["content"] == "echo: what is the capital of France?"
    )
    assert len(fake.requests) == 3  # the first call, then two failed attempts
    other = gateway.chat("chat", "never asked before")
    assert other.json()["choices"][0]["message"]["content"] == MESSAGE
