"""The ASGI edge: request ids, body-size limits and authentication for every `/v1` call.

A plain ASGI middleware (not ``BaseHTTPMiddleware``) so the hot path pays for one
function call and a header append, nothing more.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portway.api.render import error_response, internal_error
from portway.errors import PortwayError, RequestTooLargeError
from portway.security.auth import Authenticator, bearer_token
from portway.security.principal import Principal

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
# A call without a key may still carry a console session (cookie + CSRF header).
SessionAuth = Callable[[Scope], Awaitable[Principal | None]]
_MAX_CLIENT_REQUEST_ID = 128


class RequestIds:
    """Unique request ids: a random per-process prefix and a counter (no syscall per request)."""

    def __init__(self) -> None:
        self._prefix = "req_" + secrets.token_hex(8)
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if 0 < len(text) <= _MAX_CLIENT_REQUEST_ID and text.isprintable():
                return text
    return None


def header_value(scope: Scope, wanted: bytes) -> str | None:
    """The first value of the header ``wanted`` (lower-case bytes) in an ASGI scope."""
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return None


class EdgeMiddleware:
    """Tags every response with ``x-request-id``, bounds bodies and authenticates `/v1`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Callable[[], Authenticator],
        max_body_bytes: int,
        body_limits: Mapping[str, int] | None = None,
        session_auth: SessionAuth | None = None,
    ) -> None:
        self.app = app
        self._authenticator = authenticator
        self._session_auth = session_auth
        self._max_body_bytes = max_body_bytes
        self._new_request_id = RequestIds()
        # Per-path overrides, e.g. file uploads, which may be larger than any JSON body.
        self._body_limits = dict(body_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or self._new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_header = (REQUEST_ID_HEADER, request_id.encode("latin-1"))

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        limit = self._body_limits.get(scope["path"], self._max_body_bytes)
        try:
            declared = self._check_declared_size(scope, limit)
            if scope["path"].startswith("/v1/"):
                token = bearer_token(header_value(scope, b"authorization"))
                if token is None:
                    token = header_value(scope, b"api-key")
                principal = None
                if token is None and self._session_auth is not None:
                    principal = await self._session_auth(scope)
                if principal is None:
                    principal = await self._authenticator().authenticate(token)
                scope["state"]["principal"] = principal
        except PortwayError as error:
            await error_response(error)(scope, receive, send_with_request_id)
            return
        except Exception:  # e.g. the key store is unreachable: a clean 500, logged
            logger.exception("authentication failed on %s", scope["path"])
            await error_response(internal_error())(scope, receive, send_with_request_id)
            return
        # The server enforces a declared Content-Length; only chunked bodies need counting.
        bounded = receive if declared else self._bounded(receive, limit)
        await self.app(scope, bounded, send_with_request_id)

    def _check_declared_size(self, scope: Scope, limit: int) -> bool:
        """Reject a declared length over the limit; True when a length was declared."""
        length = header_value(scope, b"content-length")
        if length is None or not length.isdigit():
            return False
        if int(length) > limit:
            raise self._too_large(limit)
        return True

    @staticmethod
    def _too_large(limit: int) -> RequestTooLargeError:
        return RequestTooLargeError(f"The request body is larger than the limit of {limit} bytes.")

    def _bounded(self, receive: Receive, limit: int) -> Receive:
        """Count streamed (chunked) body bytes too: Content-Length may be absent."""
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self._too_large(limit)
            return message

        return bounded_receive
