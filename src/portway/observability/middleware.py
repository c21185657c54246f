"""The outermost ASGI layer: one ``RequestTrace`` per HTTP request, the overhead header,
and the finished request handed on (request log, OpenTelemetry) after its last byte.

``x-portway-overhead-ms`` is on every response: the time from the request's arrival to
its response headers, minus the time spent waiting for upstream attempts (up to their
first byte) and in retry backoffs. A whole answer's headers leave after the answer, so it
is all of Portway's own time; a stream's headers leave with its first chunk, so for a
stream it covers the way to the first upstream byte and back, not the relaying of the
chunks after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portway.observability.request_log import MODEL_PATHS, Bodies, BodyPolicy
from portway.observability.trace import RequestTrace

logger = logging.getLogger(__name__)

OVERHEAD_HEADER = b"x-portway-overhead-ms"
_TRACEPARENT = b"traceparent"
_ERROR_BODY_BYTES = 8192


class FinishedRequests(Protocol):
    """Where finished requests go (``observability.service.Observability``)."""

    body_policy: BodyPolicy

    def finish(self, trace: RequestTrace, bodies: Bodies, overhead_ms: float | None) -> None: ...


def _traceparent(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _TRACEPARENT:
            return value.decode("latin-1")
    return None


def _append(buffer: bytearray | None, chunk: bytes, limit: int) -> tuple[bytearray, bool]:
    """``chunk`` added to ``buffer`` up to ``limit`` bytes; True when something was cut."""
    buffer = buffer if buffer is not None else bytearray()
    room = limit - len(buffer)
    if room <= 0:
        return buffer, bool(chunk)
    buffer += chunk[:room]
    return buffer, len(chunk) > room


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, finished: Callable[[], FinishedRequests]) -> None:
        self.app = app
        self._finished = finished

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sink = self._finished()
        state = scope.setdefault("state", {})
        trace = RequestTrace(state, scope["method"], scope["path"], _traceparent(scope))
        state["trace"] = trace
        bodies = Bodies()
        overhead: float | None = None
        model_call = scope["path"] in MODEL_PATHS
        policy = sink.body_policy
        decided = False

        def keep() -> bool:
            # Decided on first use: the edge (inside this layer) authenticates first.
            nonlocal decided
            if not decided:
                decided = True
                bodies.keep = model_call and policy.allows(state.get("principal"))
            return bodies.keep

        async def receive_captured() -> Message:
            received = await receive()
            if received["type"] == "http.request" and keep():
                bodies.request, cut = _append(
                    bodies.request, received.get("body", b""), policy.limit
                )
                bodies.request_truncated |= cut
            return received

        async def send_measured(message: Message) -> None:
            nonlocal overhead
            kind = message["type"]
            if kind == "http.response.start":
                now = time.perf_counter()
                trace.status = message["status"]
                trace.headers_at = now
                overhead = trace.overhead_ms(now)
                value = f"{overhead:.2f}".encode("latin-1")
                message["headers"] = [*message.get("headers", ()), (OVERHEAD_HEADER, value)]
            elif kind == "http.response.body":
                body = message.get("body", b"")
                if body:
                    if trace.first_byte_at is None:
                        trace.first_byte_at = time.perf_counter()
                    if keep():
                        bodies.response, cut = _append(bodies.response, body, policy.limit)
                        bodies.response_truncated |= cut
                    elif trace.status >= 400:  # the error object, never content
                        bodies.response, _ = _append(bodies.response, body, _ERROR_BODY_BYTES)
            await send(message)

        token = trace.activate()
        try:
            await self.app(scope, receive_captured if model_call else receive, send_measured)
        finally:
            trace.deactivate(token)
            trace.closed = True
            try:
                sink.finish(trace, bodies, overhead)
            except Exception:
                logger.exception("recording request %s failed", trace.request_id)
