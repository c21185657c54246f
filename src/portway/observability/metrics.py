"""Prometheus metrics for `GET /metrics`.

Contract: ``Metrics.observe`` takes the ``UsageRecord`` the ledger recorder builds for
every chat call (so requests, tokens, cost and latency are computed once, for both the
ledger and the metrics); gauges (deployment queues, breaker states, in-flight calls) are
read from their owners when Prometheus scrapes. Each ``Metrics`` has its own registry:
no process-wide state, several apps can live in one process. The ``model`` label only
takes the names Portway serves (``UNKNOWN_MODEL`` for anything else a client sent), so
clients cannot grow the label set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from portway.accounting.ledger import UsageRecord
from portway.observability.trace import GENAI_OPERATIONS_BY_ENDPOINT

NANOS_PER_USD = 1_000_000_000
# The OpenTelemetry GenAI metrics' advised buckets (seconds, tokens).
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48)
GENAI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BREAKER_STATES = ("closed", "open", "half_open")
UNKNOWN_MODEL = "unknown"

QueueStats = Callable[[], Mapping[str, Mapping[str, float | int]]]
HealthReport = Callable[[], Awaitable[dict[str, Any]]]


class _Snapshots(Collector):
    """Gauges read at scrape time from the last snapshot of queues and deployments."""

    def __init__(self) -> None:
        self.queues: Mapping[str, Mapping[str, float | int]] = {}
        self.deployments: list[dict[str, Any]] = []

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "portway_deployment_queue_depth",
            "Requests waiting for a deployment",
            labels=["deployment"],
        )
        wait = GaugeMetricFamily(
            "portway_deployment_queue_wait_p99_seconds",
            "p99 wait of recently admitted requests",
            labels=["deployment"],
        )
        for deployment, stats in self.queues.items():
            depth.add_metric([deployment], float(stats.get("depth", 0)))
            wait.add_metric([deployment], float(stats.get("wait_p99_ms", 0)) / 1000)
        in_flight = GaugeMetricFamily(
            "portway_deployment_in_flight", "Calls in flight per deployment", labels=["deployment"]
        )
        state = GaugeMetricFamily(
            "portway_deployment_breaker_state",
            "1 for the circuit breaker's current state",
            labels=["deployment", "state"],
        )
        for row in self.deployments:
            in_flight.add_metric([row["id"]], float(row.get("in_flight", 0)))
            for name in BREAKER_STATES:
                state.add_metric([row["id"], name], 1.0 if row.get("state") == name else 0.0)
        yield from (depth, wait, in_flight, state)


class Metrics:
    def __init__(self, models: Collection[str]) -> None:
        """``models``: the public model names, the only values the ``model`` label takes."""
        self._models = frozenset(models)
        self.registry = CollectorRegistry(auto_describe=False)
        labels = ["model", "status", "cache"]
        self._requests = Counter(
            "portway_requests",
            "Chat calls by model, HTTP status and cache outcome",
            labels,
            registry=self.registry,
        )
        self._tokens = Counter(
            "portway_tokens",
            "Tokens by model and kind (prompt, completion, cached)",
            ["model", "kind"],
            registry=self.registry,
        )
        self._cost = Counter(
            "portway_cost_usd",
            "Upstream cost in USD by model",
            ["model"],
            registry=self.registry,
        )
        # Above portway_requests_total by the retries, failovers and stream resumes.
        self._attempts = Counter(
            "portway_upstream_attempts",
            "Upstream attempts (retries, failovers, stream resumes included) by model",
            ["model"],
            registry=self.registry,
        )
        self._saved = Counter(
            "portway_cost_saved_usd",
            "Cost the cache saved, in USD, by model",
            ["model"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "portway_request_duration_seconds",
            "Chat call latency by model",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._ttft = Histogram(
            "portway_time_to_first_token_seconds",
            "Streams: time to the first token",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._guardrails = Counter(
            "portway_guardrail_actions",
            "Guardrail decisions by guardrail and action (blocked, redacted, flagged)",
            ["guardrail", "action"],
            registry=self.registry,
        )
        # The OpenTelemetry GenAI metrics under their Prometheus names (dots as underscores).
        genai = ["gen_ai_operation_name", "gen_ai_request_model"]
        self._genai_tokens = Histogram(
            "gen_ai_client_token_usage",
            "GenAI: tokens per model call, by token type (input, output)",
            [*genai, "gen_ai_token_type"],
            buckets=GENAI_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self._genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI: duration of model calls",
            genai,
            buckets=GENAI_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._genai_ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "GenAI: streams, time to the first token",
            genai,
            buckets=GENAI_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._snapshots = _Snapshots()
        self.registry.register(self._snapshots)
        # Bounded: the model label takes the served names only; the others, few values.
        self._children: dict[tuple[Counter | Histogram, tuple[str, ...]], Any] = {}

    def guardrail_action(self, guardrail: str, action: str) -> None:
        self._guardrails.labels(guardrail, action).inc()

    def observe(self, record: UsageRecord) -> None:
        model = record.model if record.model in self._models else UNKNOWN_MODEL
        child = self._child
        child(self._requests, (model, str(record.status), record.cache_status or "none")).inc()
        seconds = record.latency_ms / 1000
        child(self._latency, (model,)).observe(seconds)
        operation = GENAI_OPERATIONS_BY_ENDPOINT.get(record.endpoint, "chat")
        child(self._genai_duration, (operation, model)).observe(seconds)
        if record.ttft_ms is not None:
            child(self._ttft, (model,)).observe(record.ttft_ms / 1000)
            child(self._genai_ttft, (operation, model)).observe(record.ttft_ms / 1000)
        if record.prompt_tokens:
            child(self._genai_tokens, (operation, model, "input")).observe(record.prompt_tokens)
        if record.completion_tokens:
            child(self._genai_tokens, (operation, model, "output")).observe(
                record.completion_tokens
            )
        for kind, count in (
            ("prompt", record.prompt_tokens),
            ("completion", record.completion_tokens),
            ("cached", record.cached_tokens),
        ):
            if count:
                child(self._tokens, (model, kind)).inc(count)
        if record.attempts:
            child(self._attempts, (model,)).inc(record.attempts)
        if record.cost_nanos:
            child(self._cost, (model,)).inc(record.cost_nanos / NANOS_PER_USD)
        if record.cost_saved_nanos:
            child(self._saved, (model,)).inc(record.cost_saved_nanos / NANOS_PER_USD)

    def _child(self, metric: Counter | Histogram, labels: tuple[str, ...]) -> Any:
        """A metric's child for these labels, resolved once (prometheus_client's ``labels``
        validates and locks on every call: it cost more than the update itself)."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    async def render(self, queues: QueueStats, health: HealthReport) -> bytes:
        """The exposition text, with the gauges refreshed from their owners first."""
        self._snapshots.queues = queues()
        self._snapshots.deployments = (await health())["data"]
        return bytes(generate_latest(self.registry))
