"""``RequestTrace``: what one HTTP request did, timed with the monotonic clock.

Contract: the observability middleware makes one trace per HTTP request and makes it the
*current* trace (a context variable), so every pipeline call made while serving the
request, the endpoint's own and Portway's internal ones (a classifier, a cache
embedder, a Responses tool loop), records into it: one span per call, per pipeline
stage of a whole call, and per upstream attempt (retries and fallbacks are attempts).
Recording a span costs two ``perf_counter`` reads and a list append; nothing here
imports OpenTelemetry. When the request is over, the same spans become the request
log's ``spans`` and, when telemetry is on, OpenTelemetry spans with their real times
(``observability.telemetry``). Streams record their call and attempt spans (an attempt
ends at the upstream's first byte) but no per-stage spans: wrapping every stage's
iterator would cost a hop per chunk per stage.

The time Portway waits for upstreams before answering (``upstream_wait``: the attempts
up to their first byte) is what ``x-portway-overhead-ms`` subtracts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portway.accounting.ledger import UsageRecord

_current: ContextVar[RequestTrace | None] = ContextVar("portway_request_trace", default=None)

# gen_ai.operation.name per pipeline operation (OpenTelemetry GenAI conventions).
GENAI_OPERATIONS: Mapping[str, str] = {
    "chat": "chat",
    "embed": "embeddings",
    "completion": "text_completion",
    "response": "generate_content",
}
# ... and per ledger endpoint of an HTTP-served call (internal calls are chat calls).
GENAI_OPERATIONS_BY_ENDPOINT: Mapping[str, str] = {
    "chat.completions": "chat",
    "embeddings": "embeddings",
    "completions": "text_completion",
    "responses": "generate_content",
}


def current_trace() -> RequestTrace | None:
    """The trace of the HTTP request being served in this task, if any."""
    return _current.get()


@dataclass(slots=True)
class Span:
    """One timed step; ``parent`` is the index of the enclosing span (None: the request)."""

    name: str
    kind: str  # "call" | "stage" | "attempt"
    start: float
    parent: int | None
    end: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class RequestTrace:
    """One HTTP request's spans, pipeline calls and the ids logs carry."""

    __slots__ = (
        "_stack",
        "closed",
        "first_byte_at",
        "guardrails",
        "headers_at",
        "method",
        "path",
        "provider",
        "records",
        "spans",
        "started",
        "state",
        "status",
        "trace_id",
        "traceparent",
        "upstream_wait",
        "wall_ns",
    )

    def __init__(
        self, state: MutableMapping[str, Any], method: str, path: str, traceparent: str | None
    ) -> None:
        self.state = state  # the ASGI scope's state: the edge puts the request id there
        self.method = method
        self.path = path
        self.started = time.perf_counter()
        self.wall_ns = time.time_ns()
        self.spans: list[Span] = []
        self._stack: list[int] = []
        self.records: list[UsageRecord] = []
        self.guardrails: list[str] = []
        self.upstream_wait = 0.0
        self.traceparent = traceparent
        self.trace_id: str | None = None  # see ensure_trace_id
        self.closed = False
        self.status = 0
        self.headers_at: float | None = None
        self.first_byte_at: float | None = None
        self.provider: str | None = None

    def ensure_trace_id(self) -> str:
        """The request's W3C trace id (32 hex digits): the incoming ``traceparent``'s, else
        a new random one; the same one reaches the logs, the request log and the spans."""
        if self.trace_id is None:
            incoming = _incoming_trace_id(self.traceparent)
            self.trace_id = incoming or f"{random.getrandbits(128) or 1:032x}"
        return self.trace_id

    @property
    def request_id(self) -> str | None:
        return self.state.get("request_id")  # type: ignore[no-any-return]

    def activate(self) -> object:
        """Make this the current trace (until ``deactivate`` with the returned token)."""
        return _current.set(self)

    @staticmethod
    def deactivate(token: object) -> None:
        _current.reset(token)  # type: ignore[arg-type]

    # Spans -------------------------------------------------------------------

    def open(self, name: str, kind: str, attributes: dict[str, Any] | None = None) -> int:
        """Start a span under the innermost open one; returns its handle."""
        if self.closed:
            return -1
        index = len(self.spans)
        parent = self._stack[-1] if self._stack else None
        self.spans.append(Span(name, kind, time.perf_counter(), parent, None, attributes or {}))
        self._stack.append(index)
        return index

    def close(self, index: int, error: BaseException | None = None) -> None:
        if index < 0 or index >= len(self.spans):
            return
        span = self.spans[index]
        span.end = time.perf_counter()
        if error is not None:
            span.error = type(error).__name__
            code = getattr(error, "code", None)
            if isinstance(code, str):
                span.attributes["error.code"] = code
        # Usually the innermost; a stream's spans may close out of order.
        if self._stack and self._stack[-1] == index:
            self._stack.pop()
        elif index in self._stack:
            self._stack.remove(index)

    def attempt(self, deployment: str, provider: str, group: str, number: int) -> AttemptSpan:
        return AttemptSpan(self, deployment, provider, group, number)

    # Pipeline calls ----------------------------------------------------------

    def record(self, call_span: int, record: UsageRecord) -> None:
        """A pipeline call finished: its ledger record, onto its call span too."""
        if self.closed:
            return
        self.records.append(record)
        provider = self.provider
        if 0 <= call_span < len(self.spans):
            attributes = self.spans[call_span].attributes
            attributes["gen_ai.response.model"] = record.model
            attributes["gen_ai.usage.input_tokens"] = record.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = record.completion_tokens
            if provider is not None:
                attributes["gen_ai.provider.name"] = provider
            if record.deployment is not None:
                attributes["portway.deployment"] = record.deployment
            if record.cache_status is not None:
                attributes["portway.cache"] = record.cache_status
            attributes["portway.cost_usd"] = record.cost_nanos / 1e9
            attributes["portway.attempts"] = record.attempts
            attributes["http.response.status_code"] = record.status

    def guardrail(self, name: str, action: str) -> None:
        if not self.closed:
            self.guardrails.append(f"{name}:{action}")

    # Timing ------------------------------------------------------------------

    def millis(self, moment: float) -> float:
        """Milliseconds from the request's start to ``moment`` (a ``perf_counter`` value)."""
        return (moment - self.started) * 1000

    def overhead_ms(self, now: float) -> float:
        """Time Portway spent so far, upstream waits excluded."""
        return max(0.0, (now - self.started - self.upstream_wait) * 1000)

    def epoch_ns(self, moment: float) -> int:
        return self.wall_ns + int((moment - self.started) * 1e9)


def _incoming_trace_id(traceparent: str | None) -> str | None:
    if not traceparent:
        return None
    parts = traceparent.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    trace_id = parts[1].lower()
    if trace_id.strip("0123456789abcdef") or trace_id == "0" * 32:
        return None
    return trace_id


class AttemptSpan:
    """An upstream attempt: a span, and its time counted as upstream wait."""

    __slots__ = ("_index", "_started", "_trace")

    def __init__(
        self, trace: RequestTrace, deployment: str, provider: str, group: str, number: int
    ) -> None:
        self._trace = trace
        self._index = trace.open(
            f"attempt {deployment}",
            "attempt",
            {
                "portway.deployment": deployment,
                "gen_ai.provider.name": provider,
                "portway.model_group": group,
                "portway.attempt": number,
            },
        )
        self._started = time.perf_counter()

    def __enter__(self) -> AttemptSpan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        trace = self._trace
        trace.upstream_wait += time.perf_counter() - self._started
        if error is None and 0 <= self._index < len(trace.spans):
            trace.provider = trace.spans[self._index].attributes["gen_ai.provider.name"]
        trace.close(self._index, error)


class NoSpan:
    """The attempt span of a call outside any HTTP request: does nothing."""

    __slots__ = ()

    def __enter__(self) -> NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


NO_SPAN = NoSpan()
