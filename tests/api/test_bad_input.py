"""Whatever a client sends, the answer is OpenAI's error object with a 4xx status, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

GOOD_MESSAGES = [{"role": "user", "content": "hi"}]


def _post(gateway: PortwayServer, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=content,
        headers={"content-type": "application/json", **headers},
    )


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert_matches("ErrorResponse", body)
    assert response.headers["x-request-id"]
    if param is not None:
        assert body["error"]["param"] == param
    return body["error"]


def test_malformed_json(gateway: PortwayServer) -> None:
    error = assert_error(_post(gateway, b'{"model": "fake-gpt", "messages": ['), 400)
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]


def test_invalid_utf8(gateway: PortwayServer) -> None:
    assert_error(_post(gateway, b'{"model": "fake-gpt", "messages": "\xff\xfe"}'), 400)


def test_body_not_an_object(gateway: PortwayServer) -> None:
    assert_error(_post(gateway, b"[1, 2, 3]"), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "fake-gpt"}, "messages"),
        ({"messages": GOOD_MESSAGES}, "model"),
        ({"model": "fake-gpt", "messages": []}, "messages"),
        ({"model": "fake-gpt", "messages": "hello"}, "messages"),
        ({"model": "fake-gpt", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
        ({"model": "fake-gpt", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "fake-gpt", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        (
            {"model": "fake-gpt", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        ({"model": "fake-gpt", "messages": GOOD_MESSAGES, "max_tokens": -5}, "max_tokens"),
        (
            {"model": "fake-gpt", "messages": GOOD_MESSAGES, "max_completion_tokens": 0},
            "max_completion_tokens",
        ),
        ({"model": "fake-gpt", "messages": GOOD_MESSAGES, "n": 0}, "n"),
        ({"model": "fake-gpt", "messages": GOOD_MESSAGES, "temperature": 3}, "temperature"),
        ({"model": "fake-gpt", "messages": GOOD_MESSAGES, "temperature": "hot"}, "temperature"),
        ({"model": "fake-gpt", "messages": GOOD_MESSAGES, "top_p": -1}, "top_p"),
        (
            {"model": "fake-gpt", "messages": GOOD_MESSAGES, "stop": ["a", "b", "c", "d", "e"]},
            "stop",
        ),
        ({"model": "fake-gpt", "messages": GOOD_MESSAGES, "logit_bias": {"x": 1}}, "logit_bias"),
        (
            {"model": "fake-gpt", "messages": GOOD_MESSAGES, "tool_choice": "sometimes"},
            "tool_choice",
        ),
        (
            {
                "model": "fake-gpt",
                "messages": GOOD_MESSAGES,
                "tools": [{"type": "function", "function": {"name": "bad name!"}}],
            },
            "tools[0].function.name",
        ),
        (
            {
                "model": "fake-gpt",
                "messages": GOOD_MESSAGES,
                "response_format": {"type": "json_schema"},
            },
            "response_format.json_schema",
        ),
        ({"model": "fake-gpt", "messages": GOOD_MESSAGES, "stream": "yes"}, "stream"),
    ],
)
def test_invalid_parameters(gateway: PortwayServer, body: dict[str, Any], param: str) -> None:
    response = httpx.post(f"{gateway.base_url}/chat/completions", json=body)
    assert_error(response, 400, param)


def test_unknown_fields_are_accepted(gateway: PortwayServer) -> None:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "fake-gpt", "messages": GOOD_MESSAGES, "some_future_field": {"a": 1}},
    )
    assert response.status_code == 200


def test_unknown_model(gateway: PortwayServer) -> None:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "no-such-model", "messages": GOOD_MESSAGES},
    )
    error = assert_error(response, 404, "model")
    assert error["code"] == "model_not_found"


def test_unknown_model_retrieve(gateway: PortwayServer) -> None:
    error = assert_error(httpx.get(f"{gateway.base_url}/models/nope"), 404)
    assert error["code"] == "model_not_found"


def test_huge_body_is_413(start_portway, fake_openai_server) -> None:
    from tests.conftest import fake_model

    server = start_portway(
        {
            "max_request_bytes": 4096,
            "models": [fake_model("fake-gpt", fake_openai_server.base_url)],
        }
    )
    big = {"model": "fake-gpt", "messages": [{"role": "user", "content": "x" * 10_000}]}
    assert_error(httpx.post(f"{server.base_url}/chat/completions", json=big), 413)

    def chunked():  # no content-length: the limit must hold on the streamed body too
        yield b'{"model": "fake-gpt", "messages": [{"role": "user", "content": "'
        yield b"x" * 10_000
        yield b'"}]}'

    assert_error(httpx.post(f"{server.base_url}/chat/completions", content=chunked()), 413)


def test_unknown_route_and_method(gateway: PortwayServer) -> None:
    assert_error(httpx.get(f"{gateway.base_url}/nothing-here"), 404)
    assert_error(httpx.get(f"{gateway.base_url}/chat/completions"), 405)


def test_client_request_id_is_echoed(gateway: PortwayServer) -> None:
    response = httpx.get(f"{gateway.base_url}/models", headers={"x-request-id": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
