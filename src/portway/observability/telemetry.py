"""OpenTelemetry export of finished requests: spans and GenAI metrics (``telemetry``).

Contract: nothing of OpenTelemetry runs while a request is served. The request's
``RequestTrace`` records monotonic timestamps; when the request is over, ``export``
turns its spans into SDK spans with their real start and end times (a server span for
the request, then per pipeline call, stage and upstream attempt), honouring the
incoming ``traceparent`` and using the trace id the request's logs carried, and records
the GenAI metrics. The span processor (batching) and metric reader export from their
own threads. Each ``Telemetry`` has its own providers (no process-wide state).
Attributes follow the GenAI semantic conventions (``gen_ai.*``), plus ``portway.*``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace import Span as OtelSpan

from portway.accounting.ledger import UsageRecord
from portway.config import TelemetryConfig
from portway.observability.metrics import GENAI_DURATION_BUCKETS, GENAI_TOKEN_BUCKETS
from portway.observability.trace import GENAI_OPERATIONS_BY_ENDPOINT, RequestTrace

logger = logging.getLogger(__name__)

_KINDS = {"call": SpanKind.INTERNAL, "stage": SpanKind.INTERNAL, "attempt": SpanKind.CLIENT}


class _PresetTraceIds(RandomIdGenerator):
    """Random ids, except a root span's trace id, which is the one the request's logs
    already carried (set just before the root span starts, on the event loop)."""

    def __init__(self) -> None:
        self.next_trace_id: int | None = None

    def generate_trace_id(self) -> int:
        preset, self.next_trace_id = self.next_trace_id, None
        return preset if preset is not None else super().generate_trace_id()


def parent_context(traceparent: str | None) -> Context | None:
    """The remote parent named by a W3C ``traceparent`` header, if it is valid."""
    if not traceparent:
        return None
    parts = traceparent.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or parts[0] == "ff":
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3][:2], 16)
    except ValueError:
        return None
    if trace_id == 0 or span_id == 0:
        return None
    remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))
    return set_span_in_context(NonRecordingSpan(remote))


class Telemetry:
    def __init__(
        self,
        config: TelemetryConfig,
        span_processors: Sequence[Any] = (),
        metric_readers: Sequence[MetricReader] = (),
    ) -> None:
        resource = Resource.create({"service.name": config.service_name})
        self._ids = _PresetTraceIds()
        self.provider = TracerProvider(
            resource=resource,
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
            id_generator=self._ids,
        )
        for processor in span_processors:
            self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("portway")
        self.metric_reader: MetricReader | None = metric_readers[0] if metric_readers else None
        self.meter_provider = MeterProvider(resource=resource, metric_readers=list(metric_readers))
        meter = self.meter_provider.get_meter("portway")
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens used per model call, by token type",
            explicit_bucket_boundaries_advisory=GENAI_TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="Duration of model calls",
            explicit_bucket_boundaries_advisory=GENAI_DURATION_BUCKETS,
        )
        self._ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token",
            unit="s",
            description="Streams: time to the first token",
            explicit_bucket_boundaries_advisory=GENAI_DURATION_BUCKETS,
        )

    @classmethod
    def build(cls, config: TelemetryConfig) -> Telemetry | None:
        """The configured exporters, or None when telemetry is off."""
        if not config.enabled:
            return None
        processors: list[Any] = []
        readers: list[MetricReader] = []
        interval_ms = config.metrics_interval_seconds * 1000
        if config.exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = config.endpoint.rstrip("/") if config.endpoint else None
            processors.append(
                BatchSpanProcessor(
                    OTLPSpanExporter(
                        endpoint=f"{endpoint}/v1/traces" if endpoint else None,
                        headers=config.headers or None,
                    )
                )
            )
            if config.metrics:
                readers.append(
                    PeriodicExportingMetricReader(
                        OTLPMetricExporter(
                            endpoint=f"{endpoint}/v1/metrics" if endpoint else None,
                            headers=config.headers or None,
                        ),
                        export_interval_millis=interval_ms,
                    )
                )
        elif config.exporter == "console":
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
            if config.metrics:
                readers.append(
                    PeriodicExportingMetricReader(
                        ConsoleMetricExporter(), export_interval_millis=interval_ms
                    )
                )
        elif config.metrics:
            readers.append(InMemoryMetricReader())  # read in-process (tests, debugging)
        return cls(config, processors, readers)

    def shutdown(self) -> None:
        self.provider.shutdown()
        self.meter_provider.shutdown()

    # Export --------------------------------------------------------------------

    def export(self, trace: RequestTrace, now: float) -> None:
        """The finished request's spans and metrics (called once, after its last byte)."""
        self._metrics(trace)
        parent = parent_context(trace.traceparent)
        if parent is None:
            self._ids.next_trace_id = int(trace.ensure_trace_id(), 16)
        root = self._tracer.start_span(
            f"{trace.method} {trace.path}",
            context=parent,
            kind=SpanKind.SERVER,
            start_time=trace.wall_ns,
            attributes=self._root_attributes(trace),
        )
        self._ids.next_trace_id = None
        if trace.status >= 500:
            root.set_status(Status(StatusCode.ERROR))
        contexts: list[Context] = []
        opened: list[OtelSpan] = []
        root_context = set_span_in_context(root)
        for span in trace.spans:
            context = contexts[span.parent] if span.parent is not None else root_context
            child = self._tracer.start_span(
                span.name,
                context=context,
                kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
                start_time=trace.epoch_ns(span.start),
                attributes=span.attributes,
            )
            if span.error is not None:
                child.set_attribute("error.type", span.error)
                child.set_status(Status(StatusCode.ERROR, span.error))
            contexts.append(set_span_in_context(child))
            opened.append(child)
        for span, child in zip(trace.spans, opened, strict=True):
            child.end(end_time=trace.epoch_ns(span.end if span.end is not None else now))
        root.end(end_time=trace.epoch_ns(now))

    @staticmethod
    def _root_attributes(trace: RequestTrace) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "http.request.method": trace.method,
            "url.path": trace.path,
            "http.response.status_code": trace.status,
            "portway.request_id": trace.request_id or "",
        }
        principal = trace.state.get("principal")
        key_id = getattr(principal, "key_id", None)
        if key_id:
            attributes["portway.key_id"] = key_id
        records = trace.records
        if records:
            last = records[-1]
            operation = GENAI_OPERATIONS_BY_ENDPOINT.get(last.endpoint)
            if operation is not None:
                attributes["gen_ai.operation.name"] = operation
            attributes["gen_ai.response.model"] = last.model
            attributes["gen_ai.usage.input_tokens"] = sum(r.prompt_tokens for r in records)
            attributes["gen_ai.usage.output_tokens"] = sum(r.completion_tokens for r in records)
            attributes["portway.cost_usd"] = sum(r.cost_nanos for r in records) / 1e9
            if last.deployment:
                attributes["portway.deployment"] = last.deployment
            if last.cache_status:
                attributes["portway.cache"] = last.cache_status
        if trace.provider:
            attributes["gen_ai.provider.name"] = trace.provider
        if trace.headers_at is not None:
            attributes["portway.overhead_ms"] = trace.overhead_ms(trace.headers_at)
        return attributes

    def _metrics(self, trace: RequestTrace) -> None:
        for record in trace.records:
            self.observe(record, trace.provider)

    def observe(self, record: UsageRecord, provider: str | None) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": GENAI_OPERATIONS_BY_ENDPOINT.get(record.endpoint, "chat"),
            "gen_ai.request.model": record.model,
            "gen_ai.response.model": record.model,
        }
        if provider:
            attributes["gen_ai.provider.name"] = provider
        if record.status >= 400:
            attributes["error.type"] = record.error_code or str(record.status)
        self._duration.record(record.latency_ms / 1000, attributes)
        if record.ttft_ms is not None:
            self._ttft.record(record.ttft_ms / 1000, attributes)
        if record.prompt_tokens:
            self._tokens.record(record.prompt_tokens, {**attributes, "gen_ai.token.type": "input"})
        if record.completion_tokens:
            self._tokens.record(
                record.completion_tokens, {**attributes, "gen_ai.token.type": "output"}
            )
