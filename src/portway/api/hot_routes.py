"""Serve the hot endpoints straight from the middleware stack.

FastAPI's router, dependency solver and exception middleware cost about a third of the
CPU Portway spends on a proxied chat completion. The hot endpoints are plain
``Request -> Response`` functions already, so they are dispatched here by exact method
and path; everything else falls through to FastAPI unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from portway.api.render import error_response, internal_error
from portway.errors import PortwayError

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


def render_exception(request: Request, exc: Exception) -> Response:
    """The error response for any exception an endpoint raised."""
    if isinstance(exc, PortwayError):
        return error_response(exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(internal_error())


class HotRoutesMiddleware:
    def __init__(self, app: ASGIApp, *, routes: Mapping[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self._routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self._routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app  # what Starlette sets for the routes it dispatches
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            response = render_exception(request, exc)
        await response(scope, receive, send)
