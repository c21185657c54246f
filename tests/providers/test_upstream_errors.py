"""Errors clients see never carry upstream hosts, ports or key fragments; the log has them."""

from __future__ import annotations

import logging
import socket

import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import Fail, FakeOpenAI
from tests.fakes.server import PortwayServer

UPSTREAM_KEY = "sk-upstream-secret"  # what fake_model configures


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def dead_port() -> int:
    return _closed_port()


@pytest.fixture(scope="module")
def gateway(
    start_portway: PortwayFactory, fake_openai_server: FakeOpenAI, dead_port: int
) -> PortwayServer:
    return start_portway(
        {
            "models": [
                fake_model("fake-gpt", fake_openai_server.base_url),
                fake_model("gone", f"http://127.0.0.1:{dead_port}/v1"),
            ],
            "router": {"*": {"retries": 0}},
        }
    )


def _upstream_hosts(fake: FakeOpenAI) -> list[str]:
    host_port = fake.base_url.split("//", 1)[1].split("/", 1)[0]
    return [host_port, host_port.rsplit(":", 1)[1], "127.0.0.1"]


def _assert_clean(message: str, forbidden: list[str]) -> None:
    leaked = [text for text in forbidden if text in message]
    assert not leaked, f"{leaked} leaked into {message!r}"


def test_a_refused_upstream_key_is_not_echoed(
    client: openai.OpenAI, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.script(
        Fail(
            status=401,
            message="Incorrect API key provided: sk-upstr*****cret. You can find your API key "
            "at https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
            error_type="invalid_request_error",
        )
    )
    with caplog.at_level(logging.INFO, logger="portway"):
        raw = client.chat.completions.with_raw_response
        with pytest.raises(openai.APIStatusError) as caught:
            raw.create(model="fake-gpt", messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.status_code == 502
    body = error.body
    assert isinstance(body, dict) and body["code"] == "upstream_auth_failed"
    _assert_clean(body["message"], ["sk-", "cret", "platform.openai.com", UPSTREAM_KEY])
    request_id = error.response.headers["x-request-id"]
    logged = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert logged and "sk-upstr*****cret" in logged[0]  # the operator still sees it all


def test_an_upstream_message_naming_hosts_is_scrubbed(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    hosts = _upstream_hosts(fake_openai)
    fake_openai.script(
        Fail(
            status=400,
            message=f"Invalid value for 'temperature' at {fake_openai.base_url} "
            f"(replica 10.1.2.3:8000, key sk-live-0123456789abcdef)",
            code="invalid_value",
            error_type="invalid_request_error",
        )
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert "Invalid value for 'temperature'" in body["message"]  # the useful part stays
    _assert_clean(body["message"], [*hosts, "10.1.2.3", "8000", "sk-live", "0123456789abcdef"])


@pytest.mark.parametrize("stream", [False, True])
def test_an_unreachable_upstream_is_not_named(
    client: openai.OpenAI, dead_port: int, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="portway"),
        pytest.raises(openai.APIStatusError) as caught,
    ):
        client.chat.completions.create(
            model="gone", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    error = caught.value
    assert error.status_code == 503
    body = error.body
    assert isinstance(body, dict) and body["code"] == "upstream_unavailable"
    _assert_clean(body["message"], [str(dead_port), "127.0.0.1"])
    request_id = error.response.headers["x-request-id"]
    logged = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert logged and str(dead_port) in logged[0]
