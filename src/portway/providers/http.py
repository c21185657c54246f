"""The HTTP transport boundary shared by the remote providers.

Contract: ``HttpUpstream`` owns one pooled keep-alive connection pool per deployment.
``post`` returns the decoded JSON body of a 2xx answer; ``stream`` yields server-sent
events as they arrive, without buffering. Any non-2xx answer is handed to the
provider's ``error_mapper``; connection failures and timeouts become
``UpstreamUnavailableError`` / ``UpstreamTimeoutError``. Closing the stream iterator
closes the upstream connection, which cancels the upstream generation.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from portway.errors import (
    PortwayError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

ErrorMapper = Callable[[int, bytes, Mapping[str, str]], PortwayError]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def decode_json(body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"The upstream returned malformed JSON in its {what}.") from None


class HttpUpstream:
    """A pooled HTTP client for one upstream base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        connect_timeout: float,
        error_mapper: ErrorMapper,
        query: Mapping[str, str] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"content-type": "application/json", **headers}
        self._query = dict(query or {})
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        # A stream may run long; what must stay bounded is the silence between events.
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=timeout
        )
        self._map_error = error_mapper
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector, headers=self._headers, skip_auto_headers=("User-Agent",)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpUpstream.start() was not awaited")
        return self._session

    def url(self, path: str) -> str:
        return f"{self._base_url}/{path.lstrip('/')}"

    async def post(self, path: str, payload: Any) -> Any:
        try:
            async with self.session.post(
                self.url(path),
                data=orjson.dumps(payload),
                params=self._query,
                timeout=self._timeout,
            ) as response:
                body = await response.read()
                if response.status >= 300:
                    raise self._map_error(response.status, body, response.headers)
                return decode_json(body, "response")
        except TimeoutError:
            raise UpstreamTimeoutError("The upstream did not answer in time.") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailableError(f"Cannot reach the upstream: {exc}") from None

    async def stream(self, path: str, payload: Any) -> AsyncIterator[SSEEvent]:
        try:
            async with self.session.post(
                self.url(path),
                data=orjson.dumps(payload),
                params=self._query,
                timeout=self._stream_timeout,
            ) as response:
                if response.status >= 300:
                    raise self._map_error(response.status, await response.read(), response.headers)
                async for event in _parse_sse(response.content):
                    yield event
        except TimeoutError:
            raise UpstreamTimeoutError("The upstream stream stalled.") from None
        except aiohttp.ClientPayloadError:
            raise UpstreamError("The upstream dropped the stream.") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailableError(f"Cannot reach the upstream: {exc}") from None


async def _parse_sse(content: aiohttp.StreamReader) -> AsyncIterator[SSEEvent]:
    """Server-sent events from a byte stream, per the WHATWG event-stream rules."""
    event: str | None = None
    data: list[str] = []
    async for raw in content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent(event, "\n".join(data))
            event, data = None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    if data:
        yield SSEEvent(event, "\n".join(data))
