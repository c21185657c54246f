"""Streams fail over freely before their first chunk reaches the client; after it only a
resume may continue them (tests/routing/test_stream_resume.py), else they end in an error."""

from __future__ import annotations

import json
import time

from tests.fakes.openai_upstream import Drop, Fail, Reply, Stall
from tests.openapi import assert_matches
from tests.routing.conftest import deployment

ROUTE = {"strategy": "priority", "retries": 1, "backoff": {"base": "5ms", "max": "10ms"}}


def _two(upstreams, **route):
    return (
        [
            deployment("chat", upstreams[0], priority=0, timeout=1.0),
            deployment("chat", upstreams[1], priority=1),
        ],
        {"chat": {**ROUTE, **route}},
    )


def _text(events: list[str]) -> str:
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_stream_fails_over_on_an_error_status(gateway_for, upstreams) -> None:
    upstreams[0].default = Fail(503)
    gateway = gateway_for(*_two(upstreams))
    response, events = gateway.stream_events("chat", "failover")
    assert response.status_code == 200
    assert response.headers["x-portway-deployment"] == "chat#1"
    assert response.headers["x-portway-attempts"] == "2"
    assert events[-1] == "[DONE]"
    assert _text(events) == "echo: failover"
    for event in events[:-1]:
        assert_matches("CreateChatCompletionStreamResponse", json.loads(event))


def test_stream_fails_over_when_dropped_before_the_first_chunk(gateway_for, upstreams) -> None:
    upstreams[0].default = Drop(after=0)
    gateway = gateway_for(*_two(upstreams))
    response, events = gateway.stream_events("chat", "dropped early")
    assert response.headers["x-portway-deployment"] == "chat#1"
    assert _text(events) == "echo: dropped early"


def test_stream_fails_over_on_a_slow_first_byte(gateway_for, upstreams) -> None:
    upstreams[0].default = Stall(after=0, seconds=1.5)
    gateway = gateway_for(*_two(upstreams, first_byte_timeout="200ms"))
    response, events = gateway.stream_events("chat", "too slow")
    assert response.headers["x-portway-deployment"] == "chat#1"
    assert _text(events) == "echo: too slow"


def test_no_failover_after_the_first_chunk_drop(gateway_for, upstreams) -> None:
    upstreams[0].default = Drop(after=2)
    gateway = gateway_for(*_two(upstreams))
    response, events = gateway.stream_events("chat", "mid-stream")
    assert response.status_code == 200
    assert response.headers["x-portway-deployment"] == "chat"
    assert events[-1] != "[DONE]"
    error = json.loads(events[-1])
    assert error["error"]["type"] == "upstream_error"
    assert len([e for e in events if "choices" in e]) == 2
    assert upstreams[1].requests == []  # committed to the first deployment


def test_no_failover_after_the_first_chunk_stall_without_resume(gateway_for, upstreams) -> None:
    upstreams[0].default = Stall(after=1, seconds=1.5)
    models = [
        deployment("chat", upstreams[0], priority=0, timeout=0.3),
        deployment("chat", upstreams[1], priority=1),
    ]
    # The first chunk may take its time (a loaded CI machine once took over 0.3 s, and
    # the call failed over before it); the 0.3 s is the silence after it.
    route = {**ROUTE, "stream_resume": False, "first_byte_timeout": "10s"}
    gateway = gateway_for(models, {"chat": route})
    response, events = gateway.stream_events("chat", "stall")
    assert response.status_code == 200
    assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"
    assert upstreams[1].requests == []
    assert gateway.health()["chat"]["failures"] == 1


def test_client_disconnect_mid_stream_settles_the_attempt(gateway_for, upstreams) -> None:
    upstreams[0].default = Reply(content="a long answer " * 20, chunk_delay=0.2)
    gateway = gateway_for([deployment("chat", upstreams[0])])
    payload = {"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with gateway.http.stream("POST", "/v1/chat/completions", json=payload) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        assert gateway.health()["chat"]["in_flight"] == 1
    # The client hung up mid-stream: the attempt is settled, neither a success nor a failure.
    deadline = time.monotonic() + 5
    while gateway.health()["chat"]["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    health = gateway.health()["chat"]
    assert (health["in_flight"], health["failures"], health["state"]) == (0, 0, "closed")
