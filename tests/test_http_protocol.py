"""The server protocol's write coalescing: against a recording transport and over a socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portway.http_protocol import CoalescingTransport
from tests.fakes.server import PortwayServer


class RecordingTransport:
    """Stands in for the socket: what was written, in which calls, and whether it closed."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:  # as uvloop's transport does
            raise RuntimeError("unable to perform operation: the handler is closed")
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _transport() -> tuple[RecordingTransport, CoalescingTransport]:
    socket_side = RecordingTransport()
    return socket_side, CoalescingTransport(socket_side, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_a_head_leaves_with_the_body_written_after_it() -> None:
    socket_side, transport = _transport()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert socket_side.writes == []  # held for what follows
    transport.write(b"{}")
    assert socket_side.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert len(socket_side.writes) == 1


async def test_a_stream_head_is_not_held_past_the_loop_iteration() -> None:
    socket_side, transport = _transport()
    transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    await asyncio.sleep(0)
    assert socket_side.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]


async def test_only_heads_are_held() -> None:
    socket_side, transport = _transport()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"5\r\nfirst\r\n")
    transport.write(b"6\r\nsecond\r\n")  # a stream's later chunks leave as written
    assert socket_side.writes == [b"HTTP/1.1 200 OK\r\n\r\n5\r\nfirst\r\n", b"6\r\nsecond\r\n"]


async def test_a_head_held_when_the_peer_leaves_is_dropped() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    socket_side, transport = _transport()
    transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    socket_side.closed = True  # the client went away before the end of the iteration
    await asyncio.sleep(0)  # the scheduled flush runs
    loop.set_exception_handler(None)
    assert socket_side.writes == []
    assert errors == []  # nothing written to the closed socket, nothing logged


async def test_close_sends_what_is_held_first() -> None:
    socket_side, transport = _transport()
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert socket_side.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
    assert socket_side.closed
    assert transport.is_closing()  # everything else is the socket's own
    await asyncio.sleep(0)
    assert socket_side.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]


async def _ping(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _read_response(sock: socket.socket) -> tuple[bytes, int]:
    """One whole response (it has a Content-Length) and how many recv calls it took."""
    data, calls = b"", 0
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
        calls += 1
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
        calls += 1
    return data, calls


@pytest.fixture()
def server() -> Iterator[PortwayServer]:
    app = Starlette(routes=[Route("/ping", _ping)])
    running = PortwayServer(app)
    running.start()
    yield running
    running.stop()


def test_a_whole_answer_arrives_as_one_segment_with_keep_alive(server: PortwayServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        for _ in range(20):  # the same connection, kept alive between answers
            sock.sendall(b"GET /ping HTTP/1.1\r\nhost: localhost\r\n\r\n")
            data, calls = _read_response(sock)
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
            assert data.endswith(b'{"status":"ok"}')
            assert calls == 1  # head and body were sent together
