"""A raw HTTP/1.1 server on loopback whose every byte a test scripts, to misbehave precisely.

Each accepted connection runs the test's handler ``(ServerConnection) -> None`` in the
test's own event loop; the server records every connection and request, and notes when
the client went away, so tests can count keep-alive reuse and see disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class RawRequest:
    request_line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ServerConnection:
    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    requests: list[RawRequest] = field(default_factory=list)
    client_left: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_request(self) -> RawRequest | None:
        """The next request on this connection, or None when the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.client_left.set()
            return None
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        request = RawRequest(lines[0], headers, body)
        self.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_client_leaves(self) -> None:
        """Read (and drop) whatever comes until the client closes the connection."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass
        self.client_left.set()

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[ServerConnection], Awaitable[None]]


def http_response(
    status: int = 200,
    body: bytes = b"{}",
    headers: Iterable[tuple[str, str]] = (),
    *,
    reason: str = "OK",
) -> bytes:
    """A complete response with Content-Length."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked_head(status: int = 200, content_type: str = "text/event-stream") -> bytes:
    return (
        f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


class RawServer:
    """Serve ``handler`` on 127.0.0.1 (TLS when given a server context)."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections: list[ServerConnection] = []
        self.port = 0

    @property
    def requests(self) -> list[RawRequest]:
        return [request for connection in self.connections for request in connection.requests]

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = ServerConnection(len(self.connections), reader, writer)
        self.connections.append(connection)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(connection)
        except ConnectionError:
            connection.client_left.set()
        except asyncio.CancelledError:
            # Only stop() cancels handlers; ending quietly keeps asyncio's stream
            # callback from logging the cancellation as an error.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
