"""Structured JSON logs: lines logged while a request is served carry its request id and
trace id, and never the prompt."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from portway.observability.logs import JsonFormatter, configure_logging
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer

PROMPT = "my very private prompt 4242"


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "log_format": "json",
            "models": [fake_model("fake-gpt", fake_openai_server.base_url)],
            "router": {"fake-gpt": {"retries": 1, "backoff": {"base": "5ms", "max": "10ms"}}},
        }
    )


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("portway")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_request_lines_carry_request_and_trace_ids(
    server: PortwayServer, fake_openai: FakeOpenAI, captured: io.StringIO
) -> None:
    fake_openai.script(Fail(500, message="upstream broke"), Reply(content="ok"))
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    raw = server.sdk(default_headers={"traceparent": traceparent}).chat.completions
    response = raw.with_raw_response.create(
        model="fake-gpt", messages=[{"role": "user", "content": PROMPT}]
    )
    request_id = response.headers["x-request-id"]
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines() if line]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert mine, lines
    failure = next(line for line in mine if "failed" in line["message"])
    assert failure["level"] == "info" and failure["logger"] == "portway.routing.router"
    assert failure["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert {"time", "level", "logger", "message"} <= set(failure)
    assert PROMPT not in captured.getvalue()


def test_configure_logging_formats_lines_as_json() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging("info", "json", stream)
        logging.getLogger("portway.test").warning("outside any request %d", 7)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
    line = orjson.loads(stream.getvalue().splitlines()[-1])
    assert line["message"] == "outside any request 7" and line["level"] == "warning"
    assert "request_id" not in line
