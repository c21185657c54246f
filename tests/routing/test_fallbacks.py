"""Fallback groups over real HTTP: order, context-window and content-policy fallbacks."""

from __future__ import annotations

from tests.fakes.openai_upstream import Fail, Reply
from tests.routing.conftest import deployment

NO_RETRY = {"retries": 0, "backoff": {"base": "10ms", "max": "20ms"}}


def test_fallbacks_are_tried_in_order_after_retries(gateway_for, upstreams) -> None:
    primary, first_fallback, second_fallback = upstreams
    primary.default = Fail(500)
    first_fallback.default = Fail(503)
    second_fallback.default = Reply(content="from the second fallback")
    gateway = gateway_for(
        [
            deployment("chat", primary),
            deployment("backup", first_fallback),
            deployment("last-resort", second_fallback),
        ],
        {
            "chat": {
                "retries": 1,
                "backoff": {"base": "10ms"},
                "fallbacks": ["backup", "last-resort"],
            },
            "backup": NO_RETRY,
            "last-resort": NO_RETRY,
        },
    )
    response = gateway.chat("chat")
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "from the second fallback"
    assert body["model"] == "last-resort"
    assert response.headers["x-portway-fallback"] == "last-resort"
    assert response.headers["x-portway-route"] == "chat"
    assert response.headers["x-portway-deployment"] == "last-resort"
    assert response.headers["x-portway-attempts"] == "4"  # 2 on chat, 1 on each fallback
    assert len(primary.requests) == 2
    times = [primary.requests[-1].at, first_fallback.requests[0].at, second_fallback.requests[0].at]
    assert times == sorted(times)
    assert second_fallback.requests[0].body["model"] == "upstream-last-resort"


def test_no_fallback_for_a_client_error(gateway_for, upstreams) -> None:
    primary, backup = upstreams[0], upstreams[1]
    primary.default = Fail(400, message="bad temperature", error_type="invalid_request_error")
    gateway = gateway_for(
        [deployment("chat", primary), deployment("backup", backup)],
        {"chat": {**NO_RETRY, "fallbacks": ["backup"]}},
    )
    response = gateway.chat("chat")
    assert response.status_code == 400
    assert backup.requests == []


def test_context_length_exceeded_goes_to_the_context_window_fallback(
    gateway_for, upstreams
) -> None:
    small, ordinary_backup, large = upstreams
    small.default = Fail(
        400,
        message="This model's maximum context length is 4096 tokens.",
        code="context_length_exceeded",
        error_type="invalid_request_error",
    )
    large.default = Reply(content="I have room")
    gateway = gateway_for(
        [
            deployment("small", small, context_window=4096),
            deployment("backup", ordinary_backup),
            deployment("large", large, context_window=128000),
        ],
        {
            "small": {
                **NO_RETRY,
                "fallbacks": ["backup"],
                "context_window_fallbacks": ["large"],
            }
        },
    )
    response = gateway.chat("small", text="a very long prompt")
    assert response.status_code == 200
    assert response.json()["model"] == "large"
    assert response.headers["x-portway-fallback"] == "large"
    assert len(small.requests) == 1  # not retried: retrying cannot shorten the prompt
    assert ordinary_backup.requests == []


def test_context_length_without_fallback_is_the_clients_400(gateway_for, upstreams) -> None:
    upstreams[0].default = Fail(
        400, message="maximum context length exceeded", code="context_length_exceeded"
    )
    gateway = gateway_for([deployment("small", upstreams[0])], {"small": NO_RETRY})
    response = gateway.chat("small")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_content_policy_refusal_goes_to_the_content_policy_fallback(gateway_for, upstreams) -> None:
    strict, lenient = upstreams[0], upstreams[1]
    strict.script(
        Fail(400, message="flagged by our safety system", code="content_policy_violation"),
        Reply(content="filtered", finish_reason="content_filter"),
    )
    gateway = gateway_for(
        [deployment("strict", strict), deployment("lenient", lenient)],
        {"strict": {**NO_RETRY, "content_policy_fallbacks": ["lenient"]}},
    )
    for _ in range(2):  # an error answer, then a filtered completion
        response = gateway.chat("strict")
        assert response.status_code == 200
        assert response.json()["model"] == "lenient"
        assert response.headers["x-portway-fallback"] == "lenient"
    assert len(strict.requests) == 2
    assert len(lenient.requests) == 2
