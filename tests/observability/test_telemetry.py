"""OpenTelemetry over HTTP: span trees read with the SDK's in-memory exporter (a retry
and a fallback appear as attempt spans), `traceparent`, GenAI metrics, the overhead
header, `/docs` and `/openapi.json`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.otlp_collector import FakeCollector
from tests.fakes.server import PortwayServer

FAST = {"backoff": {"base": "5ms", "max": "10ms"}}


@pytest.fixture(scope="module")
def server(
    start_portway: PortwayFactory, fake_openai_server: FakeOpenAI, backup_upstream: FakeOpenAI
) -> PortwayServer:
    return start_portway(
        {
            "telemetry": {"enabled": True, "exporter": "none"},
            "models": [
                fake_model("primary", fake_openai_server.base_url),
                fake_model("backup-model", backup_upstream.base_url),
            ],
            "router": {
                "primary": {"retries": 1, **FAST, "fallbacks": ["backup-model"]},
                "backup-model": {"retries": 0, **FAST},
            },
        }
    )


@pytest.fixture
def spans(server: PortwayServer) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    telemetry = server.app.state.services.observability.telemetry
    telemetry.provider.add_span_processor(processor)
    yield exporter
    exporter.clear()
    processor.shutdown()


def tree(exporter: InMemorySpanExporter, request_id: str) -> list[ReadableSpan]:
    """The spans of one request (its trace), waiting for them: they are exported after
    the response's last byte."""
    deadline = time.monotonic() + 10
    while True:
        root = next(
            (
                span
                for span in exporter.get_finished_spans()
                if (span.attributes or {}).get("portway.request_id") == request_id
            ),
            None,
        )
        if root is not None:
            break
        assert time.monotonic() < deadline, f"no spans exported for {request_id}"
        time.sleep(0.01)
    trace_id = root.context.trace_id
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def chat(server: PortwayServer, model: str = "primary", **options: Any) -> Any:
    return server.sdk(**options).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "trace me"}]
    )


def test_a_retry_and_a_fallback_are_attempt_spans(
    server: PortwayServer,
    spans: InMemorySpanExporter,
    fake_openai: FakeOpenAI,
    backup: FakeOpenAI,
) -> None:
    fake_openai.default = Fail(500)
    backup.script(Reply(content="from backup", prompt_tokens=9, completion_tokens=3))
    raw = chat(server)
    assert raw.headers["x-portway-attempts"] == "3"
    request_id = raw.headers["x-request-id"]

    trace = tree(spans, request_id)
    root = next(s for s in trace if s.parent is None)
    assert root.kind == SpanKind.SERVER
    assert root.name == "POST /v1/chat/completions"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["gen_ai.usage.input_tokens"] == 9
    assert root.attributes["portway.deployment"] == "backup-model"

    (call,) = children(trace, root)
    assert call.name == "chat primary"
    assert call.attributes["gen_ai.operation.name"] == "chat"
    assert call.attributes["gen_ai.request.model"] == "primary"
    assert call.attributes["gen_ai.response.model"] == "backup-model"
    assert call.attributes["gen_ai.usage.input_tokens"] == 9
    assert call.attributes["gen_ai.usage.output_tokens"] == 3
    assert call.attributes["gen_ai.provider.name"] == "openai"
    assert call.attributes["portway.attempts"] == 3

    stages = [s.name for s in trace if s.kind == SpanKind.INTERNAL and s is not call]
    assert "router" in stages and "guardrail" in stages and "budget" in stages
    router = next(s for s in trace if s.name == "router")
    attempts = sorted(children(trace, router), key=lambda s: s.start_time)
    assert [s.name for s in attempts] == [
        "attempt primary",
        "attempt primary",
        "attempt backup-model",
    ]
    assert all(s.kind == SpanKind.CLIENT for s in attempts)
    assert [s.attributes["portway.attempt"] for s in attempts] == [1, 2, 3]
    assert [s.status.status_code for s in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert attempts[2].attributes["portway.model_group"] == "backup-model"
    for span in trace:
        if span.parent is not None:
            parent = next(s for s in trace if s.context.span_id == span.parent.span_id)
            assert parent.start_time <= span.start_time <= span.end_time <= parent.end_time


def test_an_incoming_traceparent_is_the_parent(
    server: PortwayServer, spans: InMemorySpanExporter, fake_openai: FakeOpenAI
) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    raw = chat(server, default_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    root = next(s for s in tree(spans, raw.headers["x-request-id"]) if s.kind == SpanKind.SERVER)
    assert f"{root.context.trace_id:032x}" == trace_id
    assert root.parent is not None and f"{root.parent.span_id:016x}" == parent_id


def test_streams_have_call_and_attempt_spans(
    server: PortwayServer, spans: InMemorySpanExporter, fake_openai: FakeOpenAI
) -> None:
    client = server.sdk()
    raw = client.chat.completions.with_raw_response.create(
        model="primary", messages=[{"role": "user", "content": "s"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text
    trace = tree(spans, raw.headers["x-request-id"])
    names = [s.name for s in trace]
    assert "chat primary" in names and "attempt primary" in names
    assert float(raw.headers["x-portway-overhead-ms"]) >= 0
    call = next(s for s in trace if s.name == "chat primary")
    assert call.attributes["portway.stream"] is True
    assert call.attributes["gen_ai.usage.output_tokens"] > 0


def test_genai_metrics(server: PortwayServer, fake_openai: FakeOpenAI) -> None:
    chat(server)
    reader = server.app.state.services.observability.telemetry.metric_reader
    assert isinstance(reader, InMemoryMetricReader)
    data = reader.get_metrics_data()
    names = {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
    } <= set(names)
    assert names["gen_ai.client.operation.duration"].unit == "s"
    types = {
        point.attributes["gen_ai.token.type"]
        for point in names["gen_ai.client.token.usage"].data.data_points
    }
    assert types == {"input", "output"}

    exposition = httpx.get(f"{server.url}/metrics").text
    for name in (
        "gen_ai_client_token_usage_bucket",
        "gen_ai_client_operation_duration_seconds_bucket",
        "portway_requests_total",
    ):
        assert name in exposition
    assert 'gen_ai_token_type="output"' in exposition


def test_every_response_has_the_overhead_header(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="slow", delay=0.3))
    raw = chat(server)
    overhead = float(raw.headers["x-portway-overhead-ms"])
    # The upstream's 300 ms are not Portway's: they are left out of the figure.
    assert 0 <= overhead < raw.elapsed.total_seconds() * 1000 - 250
    for response in (
        httpx.get(f"{server.url}/health/live"),
        httpx.get(f"{server.url}/v1/models"),
        httpx.get(f"{server.url}/nowhere"),
        httpx.post(f"{server.url}/v1/chat/completions", json={"model": "primary"}),
    ):
        assert float(response.headers["x-portway-overhead-ms"]) >= 0


def test_docs_describe_the_admin_api_only(server: PortwayServer) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/v1/admin/requests", "/v1/admin/requests/{request_id}", "/v1/admin/keys"} <= paths
    listed = schema["paths"]["/v1/admin/requests"]["get"]
    assert {"since", "key_id", "status", "after", "limit"} <= {
        parameter["name"] for parameter in listed["parameters"]
    }
    assert not any(
        path.startswith(("/v1/chat", "/v1/completions", "/v1/embeddings", "/v1/threads"))
        for path in paths
    )
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Swagger UI is served by Portway itself (offline): no script or style from elsewhere.
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(asset.startswith("/") for asset in assets), assets
    for asset in assets:
        assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    # The OpenAI-compatible endpoints are as they were: OpenAI's error shape, not FastAPI's.
    with pytest.raises(openai.BadRequestError) as bad:
        server.sdk().chat.completions.create(model="primary", messages=[])
    assert bad.value.body["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.mark.slow  # the batch span processor exports every 5 s
def test_spans_reach_an_otlp_collector(
    start_portway: PortwayFactory, fake_openai_server: FakeOpenAI
) -> None:
    collector = FakeCollector()
    collector.start()
    try:
        server = start_portway(
            {
                "telemetry": {
                    "enabled": True,
                    "endpoint": collector.url,
                    "headers": {"x-collector-token": "t0k"},
                    "metrics": False,
                },
                "models": [fake_model("otlp-model", fake_openai_server.base_url)],
            }
        )
        chat(server, model="otlp-model")
        deadline = time.monotonic() + 20  # the batch processor exports every 5 s
        while not any(span.name == "chat otlp-model" for span in collector.spans):
            assert time.monotonic() < deadline, "no span reached the collector"
            time.sleep(0.05)
        names = {span.name for span in collector.spans}
        assert {"POST /v1/chat/completions", "chat otlp-model", "attempt otlp-model"} <= names
        assert collector.headers[0]["x-collector-token"] == "t0k"
    finally:
        collector.stop()
