"""Retries over real HTTP: how many attempts, which errors, retry-after, timeouts, deadlines."""

from __future__ import annotations

import pytest

from tests.fakes.openai_upstream import Fail, Raw, Reply, Stall
from tests.fakes.server import refused_base_url
from tests.openapi import assert_matches
from tests.routing.conftest import deployment

FAST_BACKOFF = {"backoff": {"base": "10ms", "max": "50ms"}}
FAST = {"retries": 2, **FAST_BACKOFF}


def test_retryable_errors_are_retried_until_success(gateway_for, upstreams) -> None:
    fake = upstreams[0]
    fake.script(Fail(500), Fail(503), Reply(content="third time"))
    gateway = gateway_for([deployment("chat", fake)], {"chat": FAST})
    response = gateway.chat("chat")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "third time"
    assert response.headers["x-portway-attempts"] == "3"
    assert response.headers["x-portway-deployment"] == "chat"
    assert response.headers["x-portway-route"] == "chat"
    assert "x-portway-fallback" not in response.headers
    assert len(fake.requests) == 3
    assert_matches("CreateChatCompletionResponse", response.json())


def test_retries_are_bounded_and_the_last_error_is_returned(gateway_for, upstreams) -> None:
    fake = upstreams[0]
    fake.default = Fail(502, message="bad gateway upstream")
    gateway = gateway_for([deployment("chat", fake)], {"chat": FAST})
    response = gateway.chat("chat")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert_matches("ErrorResponse", response.json())
    assert response.headers["x-portway-attempts"] == "3"
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "upstream_bad_request"),
        (401, "upstream_auth_failed"),
        (404, "upstream_not_found"),
        (422, "upstream_bad_request"),
    ],
)
def test_non_retryable_errors_are_not_retried(gateway_for, upstreams, status, code) -> None:
    primary, other = upstreams[0], upstreams[1]
    primary.default = Fail(status, message="no")
    gateway = gateway_for(
        [deployment("chat", primary, priority=0), deployment("chat", other, priority=1)],
        {"chat": {**FAST, "strategy": "priority", "fallbacks": []}},
    )
    response = gateway.chat("chat")
    assert response.json()["error"]["code"] == code
    assert response.headers["x-portway-attempts"] == "1"
    assert len(primary.requests) == 1
    assert other.requests == []


def test_retry_after_is_honoured(gateway_for, upstreams) -> None:
    fake = upstreams[0]
    fake.script(Fail(429, headers={"retry-after-ms": "300"}), Reply(content="after the wait"))
    gateway = gateway_for([deployment("chat", fake)], {"chat": FAST})
    response = gateway.chat("chat")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "after the wait"
    first, second = fake.requests
    assert second.at - first.at >= 0.29  # the upstream asked for 300 ms


def test_rate_limited_deployment_is_skipped_for_another(gateway_for, upstreams) -> None:
    limited, healthy = upstreams[0], upstreams[1]
    limited.default = Fail(429, headers={"retry-after": "30"})
    gateway = gateway_for(
        [deployment("chat", limited, priority=0), deployment("chat", healthy, priority=1)],
        {"chat": {**FAST, "strategy": "priority"}},
    )
    for _ in range(3):
        response = gateway.chat("chat")
        assert response.status_code == 200
        assert response.headers["x-portway-deployment"] == "chat#1"
    # One 429 took it out for its retry-after: no more traffic while it lasts.
    assert len(limited.requests) == 1
    assert gateway.health()["chat"]["throttled_until"] is not None


def test_a_long_retry_after_on_the_only_deployment_is_not_waited_out(
    gateway_for, upstreams
) -> None:
    fake = upstreams[0]
    fake.default = Fail(429, headers={"retry-after": "60"})
    gateway = gateway_for(
        [deployment("chat", fake)], {"chat": {**FAST, "backoff": {"retry_after_cap": "1s"}}}
    )
    response = gateway.chat("chat")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert len(fake.requests) == 1


def test_connection_refused_fails_over_to_the_next_deployment(gateway_for, upstreams) -> None:
    healthy = upstreams[0]
    gateway = gateway_for(
        [
            deployment("chat", refused_base_url(), priority=0),
            deployment("chat", healthy, priority=1),
        ],
        {"chat": {**FAST, "strategy": "priority"}},
    )
    response = gateway.chat("chat")
    assert response.status_code == 200
    assert response.headers["x-portway-attempts"] == "2"
    assert response.headers["x-portway-deployment"] == "chat#1"
    assert len(healthy.requests) == 1


def test_malformed_json_is_retried(gateway_for, upstreams) -> None:
    fake = upstreams[0]
    fake.script(Raw(body=b'{"choices": [tru'), Reply(content="valid"))
    gateway = gateway_for([deployment("chat", fake)], {"chat": FAST})
    response = gateway.chat("chat")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "valid"
    assert response.headers["x-portway-attempts"] == "2"


def test_per_attempt_timeout_then_retry(gateway_for, upstreams) -> None:
    fake = upstreams[0]
    fake.script(Stall(seconds=1.5), Reply(content="quick"))
    gateway = gateway_for([deployment("chat", fake)], {"chat": {**FAST, "timeout": "200ms"}})
    response = gateway.chat("chat")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "quick"
    assert response.headers["x-portway-attempts"] == "2"


def test_deadline_header_bounds_the_whole_call(gateway_for, upstreams) -> None:
    fake = upstreams[0]
    fake.default = Stall(seconds=1.5)
    gateway = gateway_for([deployment("chat", fake)], {"chat": {**FAST, "timeout": "2s"}})
    response = gateway.chat("chat", headers={"x-portway-timeout": "300ms"})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert len(fake.requests) == 1  # the deadline left no time for a retry


def test_invalid_deadline_header_is_a_400(gateway_for, upstreams) -> None:
    gateway = gateway_for([deployment("chat", upstreams[0])])
    response = gateway.chat("chat", headers={"x-portway-timeout": "soon"})
    assert response.status_code == 400
    assert "x-portway-timeout" in response.json()["error"]["message"]
    assert upstreams[0].requests == []


def test_star_entry_gives_defaults_to_groups_without_their_own(gateway_for, upstreams) -> None:
    chat, backup = upstreams[0], upstreams[1]
    chat.default = Fail(500)
    backup.default = Fail(500)
    gateway = gateway_for(
        [deployment("chat", chat), deployment("backup", backup)],
        {"*": {"retries": 0, "fallbacks": ["backup"]}},
    )
    response = gateway.chat("chat")
    assert response.status_code == 502
    assert response.headers["x-portway-attempts"] == "2"
    assert (len(chat.requests), len(backup.requests)) == (1, 1)
    # "backup" gets the same defaults, whose fallback is itself: it is not tried twice.
    response = gateway.chat("backup")
    assert response.headers["x-portway-attempts"] == "1"
    assert len(backup.requests) == 2
