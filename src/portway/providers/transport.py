"""A lean HTTP/1.1 client for upstream calls: one keep-alive connection pool per origin.

Contract: ``HttpClient`` talks to one origin (scheme, host, port). Requests are whole
byte strings built once per call from a precomputed head (``HttpClient.head`` +
``frame``), always with ``Content-Length``. ``request`` returns a fully read
``Response`` within a total timeout; ``stream`` returns a ``Response`` as soon as its
head arrives, whose body is read with ``next_chunk`` under a per-read (idle) timeout.

- Connections are asyncio Protocols parsed by ``httptools``; bodies may use
  Content-Length, chunked encoding, or end at EOF. ``Connection: close`` is honoured.
- A response gives its connection back to the pool the moment its last byte is parsed;
  a response abandoned before that (error, timeout, the caller's task cancelled, a
  stream closed early) aborts its connection, so a half-read connection is never
  reused and the origin sees the disconnect.
- A request on a reused keep-alive connection that the origin closed before sending
  any byte of a response (the stale-connection race) is retried once on a new one.
- ``max_connections`` bounds the pool; callers beyond it wait in FIFO order. Idle
  connections are closed after ``idle_timeout`` seconds.
- Failures raise ``TransportError`` subclasses; HTTP statuses are never errors here.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterator, Mapping

import httptools

DEFAULT_IDLE_TIMEOUT = 30.0
# Stop reading from the socket while this many body bytes wait for a slow consumer.
_HIGH_WATER = 1 << 20
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field names


class TransportError(Exception):
    """The exchange with the origin failed before a complete HTTP answer."""


class ConnectError(TransportError):
    """No connection could be opened (refused, unreachable, DNS, TLS handshake)."""


class TransportTimeout(TransportError):
    """A connect, total or idle-read deadline passed."""


class ConnectionDropped(TransportError):
    """The origin closed the connection before the answer was complete."""


class ProtocolError(TransportError):
    """The origin sent bytes that are not a valid HTTP/1.1 response."""


class _StaleConnection(ConnectionDropped):
    """A reused connection closed before any response byte: safe to send again."""


class Headers(Mapping[str, str]):
    """Response headers as a case-insensitive mapping; repeated fields joined by ", "."""

    __slots__ = ("_fields",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        fields: dict[str, str] = {}
        for name, value in raw:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            fields[key] = f"{fields[key]}, {text}" if key in fields else text
        self._fields = fields

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TransportTimeout("the upstream did not answer in time"))


class Response:
    """One HTTP answer; its body arrives through the connection that produced it."""

    __slots__ = (
        "_chunks",
        "_connection",
        "_headers",
        "_loop",
        "_waiter",
        "_wake_on_data",
        "buffered",
        "complete",
        "error",
        "head_complete",
        "raw_headers",
        "received",
        "status",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, wake_on_data: bool) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head_complete = False
        self.complete = False
        self.received = False
        self.error: TransportError | None = None
        self.buffered = 0
        self._chunks: list[bytes] = []
        self._headers: Headers | None = None
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None
        self._wake_on_data = wake_on_data
        self._connection: _Connection | None = None

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.raw_headers)
        return self._headers

    @property
    def body(self) -> bytes:
        """The body read so far (all of it once ``complete``)."""
        chunks = self._chunks
        if len(chunks) == 1:
            return chunks[0]
        joined = b"".join(chunks)
        self._chunks = [joined]
        return joined

    # --- reading (the consumer's side) ---------------------------------------------

    async def read(self, idle_timeout: float) -> bytes:
        """The rest of the body; ``idle_timeout`` bounds each wait for more bytes."""
        self._wake_on_data = False
        connection = self._connection
        if connection is not None and connection.paused:
            connection.resume()
        while not self.complete:
            if self.error is not None:
                raise self.error
            await self._wait(self._loop.time() + idle_timeout)
        return self.body

    async def next_chunk(self, idle_timeout: float) -> bytes:
        """The body bytes that arrived since the last call; ``b""`` at the end of the body."""
        while True:
            if self._chunks:
                chunks = self._chunks
                self._chunks = []
                self.buffered = 0
                connection = self._connection
                if connection is not None and connection.paused:
                    connection.resume()
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            await self._wait(self._loop.time() + idle_timeout)

    def close(self) -> None:
        """Abandon the answer: an unfinished body aborts its connection."""
        connection = self._connection
        if connection is not None:
            self._connection = None
            connection.abort()

    async def _wait(self, deadline: float) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def _until_complete(self, deadline: float) -> None:
        while not self.complete:
            if self.error is not None:
                raise self.error
            await self._wait(deadline)

    async def _until_head(self, deadline: float) -> None:
        while not self.head_complete:
            if self.error is not None:
                raise self.error
            await self._wait(deadline)

    # --- events (the connection's side) ---------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: TransportError) -> None:
        if self.error is None and not self.complete:
            self.error = error
            self._connection = None
            self._wake()

    def _body_delimited_by_eof(self) -> bool:
        if self.status in (204, 304):
            return False
        return not any(
            name.lower() in (b"content-length", b"transfer-encoding")
            for name, _ in self.raw_headers
        )


class _Connection(asyncio.Protocol):
    """One keep-alive connection; feeds the response it currently serves."""

    __slots__ = (
        "_interim",
        "_parser",
        "_pool",
        "closed",
        "idle_since",
        "paused",
        "response",
        "reused",
        "transport",
    )

    def __init__(self, pool: HttpClient) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self._interim = False
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.paused = False
        self.reused = False
        self.idle_since = 0.0

    def send(self, response: Response, data: bytes) -> None:
        if self.closed:  # closed between the pool's check and now: nothing will answer
            stale = _StaleConnection if self.reused else ConnectionDropped
            response._fail(stale("the upstream closed the connection"))
            return
        response._connection = self
        self.response = response
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        """Close gracefully (idle or finished connections)."""
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self._pool._forget(self)

    def abort(self) -> None:
        """Drop at once, unread bytes and all: the origin sees the disconnect now."""
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            self._pool._forget(self)

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Not every socket is TCP (Unix sockets): then there is no delay to turn off.
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            # Bytes nobody asked for: the connection's framing cannot be trusted anymore.
            self.abort()
            return
        response.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken(ProtocolError(f"invalid HTTP response: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        self.response = None
        if response is not None and not response.complete:
            if response.head_complete and exc is None and response._body_delimited_by_eof():
                response.complete = True
                response._connection = None
                response._wake()
            elif not response.received and self.reused:
                response._fail(_StaleConnection("the upstream closed an idle connection"))
            else:
                reason = f": {exc}" if exc is not None else ""
                response._fail(ConnectionDropped(f"the upstream closed the connection{reason}"))
        self._pool._forget(self)

    def _broken(self, error: TransportError) -> None:
        response = self.response
        self.response = None
        if response is not None:
            response._fail(error)
        self.abort()

    # --- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.response is None:
            raise ProtocolError("a response nobody asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.response.raw_headers.append((name, value))  # type: ignore[union-attr]

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self._parser.get_status_code()
        if status < 200:  # 1xx interim answers precede the real one
            self._interim = True
            response.raw_headers.clear()
            return
        response.status = status
        response.head_complete = True
        if response._wake_on_data:  # whole-body reads wake once, at the end
            response._wake()

    def on_body(self, body: bytes) -> None:
        response = self.response
        assert response is not None
        response._chunks.append(body)
        if response._wake_on_data:
            response.buffered += len(body)
            if response.buffered > _HIGH_WATER and not self.paused:
                self.paused = True
                assert self.transport is not None
                self.transport.pause_reading()
            response._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        response = self.response
        assert response is not None
        response.complete = True
        response._connection = None
        self.response = None
        if self.paused:
            self.resume()
        self._pool._release(self, self._parser.should_keep_alive())
        response._wake()


class HttpClient:
    """A keep-alive HTTP/1.1 connection pool for one origin."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int | None = None,
        *,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {scheme!r} (use http or https)")
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.scheme = scheme
        self.host = host
        self.port = port or (443 if scheme == "https" else 80)
        self._connect_timeout = connect_timeout
        self._ssl: ssl.SSLContext | None = ssl_context
        self._max = max_connections
        self._idle_timeout = idle_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: deque[_Connection] = deque()
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._connections: set[_Connection] = set()
        self._size = 0  # open and opening connections (the slots in use)
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def head(self, method: str, target: str, headers: Mapping[str, str]) -> bytes:
        """A request head ending in ``content-length: `` for ``frame`` to complete."""
        lines = [f"{method} {target} HTTP/1.1", f"host: {self.host_header}"]
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
                raise ValueError(f"invalid HTTP header {name!r}")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\ncontent-length: ").encode("latin-1")

    @property
    def open_connections(self) -> int:
        return self._size

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closed = False
        if self.scheme == "https" and self._ssl is None:
            # Loading the CA bundle reads files: keep it off the event loop.
            self._ssl = await asyncio.to_thread(ssl.create_default_context)

    async def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectError("the client is closed"))
        for connection in list(self._connections):
            if connection.response is None:
                connection.close()
            else:
                connection.abort()
        self._idle.clear()

    async def request(self, data: bytes, total_timeout: float) -> Response:
        """Send ``data`` and read the whole answer, all within ``total_timeout`` seconds."""
        deadline = self._running_loop().time() + total_timeout
        return await self._exchange(data, lambda: deadline, streaming=False)

    async def stream(self, data: bytes, read_timeout: float) -> Response:
        """Send ``data`` and return once the answer's head arrived; read with ``next_chunk``.

        The caller must ``close()`` the response when done with it (a no-op once the body
        was read to its end).
        """
        loop = self._running_loop()
        return await self._exchange(data, lambda: loop.time() + read_timeout, streaming=True)

    async def _exchange(
        self, data: bytes, deadline: Callable[[], float], *, streaming: bool
    ) -> Response:
        """One request, retried once on a fresh connection if a pooled one proved stale."""
        loop = self._running_loop()
        for attempt in (0, 1):
            until = deadline()
            connection = await self._acquire(until, fresh=attempt == 1)
            response = Response(loop, wake_on_data=streaming)
            connection.send(response, data)
            try:
                if streaming:
                    await response._until_head(until)
                else:
                    await response._until_complete(until)
            except _StaleConnection:
                if attempt == 0:
                    continue
                raise
            except BaseException:
                response.close()
                raise
            return response
        raise AssertionError("unreachable")

    # --- the pool ---------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._closed:
            raise RuntimeError("HttpClient.start() was not awaited (or the client is closed)")
        return self._loop

    async def _acquire(self, deadline: float, *, fresh: bool) -> _Connection:
        loop = self._running_loop()
        while True:
            if not fresh:
                idle = self._idle
                while idle:
                    connection = idle.pop()
                    if not connection.closed:
                        return connection
            if self._max is None or self._size < self._max:
                self._size += 1
                return await self._open(deadline)
            waiter: asyncio.Future[_Connection | None] = loop.create_future()
            self._waiters.append(waiter)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    # Handed a connection or a slot just as we gave up: pass it on.
                    given = waiter.result()
                    if given is None:
                        self._free_slot()
                    else:
                        self._release(given, True)
                raise
            finally:
                timer.cancel()
            if handed is None:  # a slot was freed and is now ours
                return await self._open(deadline)
            if not handed.closed:
                return handed

    async def _open(self, deadline: float) -> _Connection:
        """Open a connection in a slot already counted in ``_size``."""
        loop = self._running_loop()
        timeout = min(self._connect_timeout, deadline - loop.time())
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:
            self._free_slot()
            raise TransportTimeout(f"connecting to {self.host_header} timed out") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake (ssl.SSLError)
            self._free_slot()
            raise ConnectError(f"cannot connect to {self.host_header}: {exc}") from None
        except BaseException:
            self._free_slot()
            raise
        if self._closed or connection.closed:
            connection.abort()
            self._free_slot()
            raise ConnectError(f"the connection to {self.host_header} closed as it opened")
        self._connections.add(connection)
        return connection

    def _release(self, connection: _Connection, keep_alive: bool) -> None:
        """A finished connection back to the pool (or closed when it cannot be reused)."""
        if not keep_alive or connection.closed or self._closed:
            connection.close()
            return
        connection.reused = True
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        assert self._loop is not None
        connection.idle_since = self._loop.time()
        self._idle.append(connection)
        if self._sweep is None:
            self._sweep = self._loop.call_at(
                connection.idle_since + self._idle_timeout, self._close_expired
            )

    def _forget(self, connection: _Connection) -> None:
        """A connection closed: drop it from the pool and free its slot."""
        if connection in self._connections:
            self._connections.discard(connection)
            with contextlib.suppress(ValueError):  # not idle: it was serving a request
                self._idle.remove(connection)
            self._free_slot()

    def _free_slot(self) -> None:
        """Hand the slot to the first waiter, else give it back."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._size -= 1

    def _close_expired(self) -> None:
        self._sweep = None
        assert self._loop is not None
        cutoff = self._loop.time() - self._idle_timeout
        idle = self._idle
        # Released connections are appended, so the oldest are on the left.
        while idle and idle[0].idle_since <= cutoff:
            idle.popleft().close()
        if idle:
            self._sweep = self._loop.call_at(
                idle[0].idle_since + self._idle_timeout, self._close_expired
            )


def frame(head: bytes, body: bytes) -> bytes:
    """The complete request: ``head`` from ``HttpClient.head`` plus the length and body."""
    return b"%b%d\r\n\r\n%b" % (head, len(body), body)
