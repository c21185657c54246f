"""The HTTP transport boundary shared by the remote providers.

Contract: ``HttpUpstream`` owns one pooled keep-alive connection pool per deployment
(``transport.HttpClient``). ``post`` returns the decoded JSON body of a 2xx answer
within ``timeout`` seconds; ``stream`` yields server-sent events as they arrive,
without buffering, and ``timeout`` bounds the silence between reads. Any non-2xx
answer is handed to the provider's ``error_mapper`` with case-insensitive headers;
connection failures and timeouts become ``UpstreamUnavailableError`` /
``UpstreamTimeoutError``, a stream cut mid-body ``UpstreamError``. Every error leaves
through ``redactor`` (``providers.redact``): clients never see the upstream's host,
port or key fragments; those stay in ``error.detail`` for the log. Closing the stream
iterator (or cancelling its task) aborts the upstream connection, which cancels the
upstream generation.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from portway.errors import (
    PortwayError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from portway.providers.redact import UpstreamRedactor
from portway.providers.transport import (
    DEFAULT_IDLE_TIMEOUT,
    ConnectionDropped,
    HttpClient,
    TransportError,
    TransportTimeout,
    frame,
)

ErrorMapper = Callable[[int, bytes, Mapping[str, str]], PortwayError]
_FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Fixed headers that carry no secret (every other configured header value is redacted).
_PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "content-type", "anthropic-version"})


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


def unavailable_error(text: str, headers: Mapping[str, str]) -> UpstreamUnavailableError:
    """An overloaded upstream's answer; one that says when to come back is paced like a 429."""
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        return UpstreamUnavailableError(text)
    return UpstreamOverloadedError(text, retry_after=retry_after)


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
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"invalid upstream base_url {base_url!r}: use http(s)://host[:port]")
        self._client = HttpClient(
            url.scheme,
            url.hostname,
            url.port,
            connect_timeout=connect_timeout,
            ssl_context=ssl_context,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
        )
        self._base_path = url.path
        params = [*parse_qsl(url.query, keep_blank_values=True), *(query or {}).items()]
        self._query = f"?{urlencode(params)}" if params else ""
        fixed = {"accept": "*/*", "accept-encoding": "identity", "content-type": "application/json"}
        for name, value in headers.items():
            # Framing is the transport's: a configured length or encoding would corrupt it.
            if name.lower() not in _FRAMING_HEADERS:
                fixed[name.lower()] = value
        self._headers = fixed
        # Fail at start-up, not on the first call, on a header HTTP cannot carry.
        self._client.head("POST", "/", fixed)
        # Request heads (method, target, every fixed header) per path, built once.
        self._heads: dict[str, bytes] = {}
        self._timeout = timeout
        self._map_error = error_mapper
        # Each credential whole and without its scheme ("Bearer <key>" and "<key>").
        credentials = [
            part
            for name, value in fixed.items()
            if name not in _PLAIN_HEADERS
            for part in (value, value.rpartition(" ")[2])
        ]
        hosts = [self._client.host_header, url.hostname, url.netloc]
        self.redactor = UpstreamRedactor([base_url.rstrip("/"), *hosts], credentials)

    def _failed(self, status: int, body: bytes, headers: Mapping[str, str]) -> PortwayError:
        return self.redactor.client_safe(self._map_error(status, body, headers))

    def _unreachable(self, exc: TransportError) -> UpstreamUnavailableError:
        return UpstreamUnavailableError("Cannot reach the upstream.", detail=str(exc))

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    def _request(self, path: str, payload: Any) -> bytes:
        head = self._heads.get(path)
        if head is None:
            target = f"{self._base_path}/{path.lstrip('/')}{self._query}"
            head = self._heads[path] = self._client.head("POST", target, self._headers)
        return frame(head, orjson.dumps(payload))

    async def post(self, path: str, payload: Any) -> Any:
        try:
            response = await self._client.request(self._request(path, payload), self._timeout)
        except TransportTimeout:
            raise UpstreamTimeoutError("The upstream did not answer in time.") from None
        except TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status >= 300:
            raise self._failed(response.status, response.body, response.headers)
        return decode_json(response.body, "response")

    async def stream(self, path: str, payload: Any) -> AsyncIterator[SSEEvent]:
        try:
            response = await self._client.stream(self._request(path, payload), self._timeout)
        except TransportTimeout:
            raise UpstreamTimeoutError("The upstream stream stalled.") from None
        except TransportError as exc:
            raise self._unreachable(exc) from None
        try:
            if response.status >= 300:
                body = await response.read(self._timeout)
                raise self._failed(response.status, body, response.headers)
            decoder = SSEDecoder()
            while chunk := await response.next_chunk(self._timeout):
                for event in decoder.feed(chunk):
                    yield event
            for event in decoder.finish():
                yield event
        except TransportTimeout:
            raise UpstreamTimeoutError("The upstream stream stalled.") from None
        except ConnectionDropped:
            raise UpstreamError("The upstream dropped the stream.") from None
        except TransportError as exc:
            raise self._unreachable(exc) from None
        finally:
            # Closing before the body's end aborts the connection: that cancels the upstream
            # generation when our client went away.
            response.close()


class SSEDecoder:
    """Server-sent events from body chunks as they arrive, per the WHATWG event-stream rules.

    Lines end in LF, CRLF or CR; ``data`` lines of one event join with LF; comments and
    fields other than ``event`` and ``data`` are ignored.
    """

    __slots__ = ("_data", "_event", "_partial")

    def __init__(self) -> None:
        self._partial = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._partial + chunk if self._partial else chunk
        if b"\r" in buffer:
            held = buffer.endswith(b"\r")  # maybe the first half of a CRLF split across chunks
            if held:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            lines = buffer.split(b"\n")
            self._partial = lines.pop() + (b"\r" if held else b"")
        else:
            lines = buffer.split(b"\n")
            self._partial = lines.pop()
        return self._lines(lines)

    def finish(self) -> list[SSEEvent]:
        """Events still pending when the body ends (a last event without its blank line)."""
        partial, self._partial = self._partial.rstrip(b"\r"), b""
        events = self._lines([partial]) if partial else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(self._dispatch())
                else:
                    self._event = None
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b":"):
                continue
            else:
                name, _, value = line.partition(b":")
                if value.startswith(b" "):
                    value = value[1:]
                if name == b"data":
                    self._data.append(value)
                elif name == b"event":
                    self._event = value.decode("utf-8", "replace")
        return events

    def _dispatch(self) -> SSEEvent:
        data = self._data
        event = SSEEvent(
            self._event, (data[0] if len(data) == 1 else b"\n".join(data)).decode(errors="replace")
        )
        self._event, self._data = None, []
        return event
