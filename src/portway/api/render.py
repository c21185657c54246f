"""The one place that renders responses: JSON bodies, OpenAI error objects and SSE streams."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from portway.api.disconnect import ClientGone, unless_disconnected
from portway.errors import InternalServerError, PortwayError
from portway.protocol.events import ServerSentEvent

logger = logging.getLogger(__name__)

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
SSE_DONE = b"data: [DONE]\n\n"


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: PortwayError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.status_code, headers=error.headers)


def internal_error() -> PortwayError:
    return InternalServerError("The server had an error while processing your request.")


def sse_event(payload: Any) -> bytes:
    """``data: <json>``; a ``ServerSentEvent`` also gets its ``event: <name>`` line."""
    if isinstance(payload, ServerSentEvent):
        data = payload.data
        body = data.encode() if isinstance(data, str) else orjson.dumps(data)
        return b"event: " + payload.event.encode() + b"\ndata: " + body + b"\n\n"
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class EventStreamResponse(Response):
    """Server-sent events from an async iterator of JSON objects, ended by ``[DONE]``.

    The first item is passed in already awaited, so errors raised before any byte was
    produced become ordinary JSON error responses. An error after that ends the stream
    with an ``{"error": ...}`` event, as OpenAI does (named ``error_event`` for streams of
    named events). When the client disconnects the iterator is closed (within
    ``disconnect.WATCH_AFTER`` seconds), which cancels the upstream call or local
    generation.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        first: Any,
        rest: AsyncIterator[Any],
        *,
        headers: Mapping[str, str] | None = None,
        done_marker: bool = True,
        error_event: str | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})  # no body: no content-length
        self._first = first
        self._rest = rest
        self._done_marker = done_marker
        self._error_event = error_event

    def _error(self, error: PortwayError) -> bytes:
        body = error.to_dict()
        if self._error_event is not None:
            return sse_event(ServerSentEvent(self._error_event, body))
        return sse_event(body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with aclosing(self._rest) as rest:  # type: ignore[type-var]
            # The head and the first event leave at once, before anything else is set up.
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send(
                {"type": "http.response.body", "body": sse_event(self._first), "more_body": True}
            )
            try:
                await unless_disconnected(receive, self._send_rest(rest, send))
            except ClientGone:
                return

    async def _send_rest(self, rest: AsyncIterator[Any], send: Send) -> None:
        try:
            async for item in rest:
                await send(
                    {"type": "http.response.body", "body": sse_event(item), "more_body": True}
                )
            if self._done_marker:
                await send({"type": "http.response.body", "body": SSE_DONE, "more_body": True})
        except PortwayError as error:
            logger.warning("stream ended by %s: %s", type(error).__name__, error.message)
            await send(
                {"type": "http.response.body", "body": self._error(error), "more_body": True}
            )
        except Exception:
            logger.exception("stream failed")
            await send(
                {
                    "type": "http.response.body",
                    "body": self._error(internal_error()),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
