"""The upstream HTTP transport against real loopback servers that misbehave on purpose.

``HttpUpstream`` (what providers use) and ``HttpClient`` (its pool) are driven against
``RawServer`` handlers that script every byte: keep-alive, chunked and EOF-delimited
bodies, idle connections closed under our feet, stalls, drops, disconnects, TLS.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
import pytest
import trustme

from portway.errors import (
    PortwayError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from portway.providers.http import HttpUpstream, SSEDecoder, SSEEvent
from portway.providers.openai import map_openai_error
from portway.providers.transport import HttpClient, TransportTimeout, frame
from tests.fakes.raw_http import (
    LAST_CHUNK,
    Handler,
    RawServer,
    ServerConnection,
    chunk,
    chunked_head,
    http_response,
)
from tests.fakes.server import free_port

Served = Callable[..., Awaitable[RawServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Served]:
    """Start RawServers for one test; all are stopped when it ends."""
    servers: list[RawServer] = []

    async def start(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> RawServer:
        server = await RawServer(handler, ssl_context).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def upstreams() -> AsyncIterator[Callable[..., Awaitable[HttpUpstream]]]:
    """Open HttpUpstreams for one test; all are closed when it ends."""
    opened: list[HttpUpstream] = []

    async def open_upstream(base_url: str, **options: Any) -> HttpUpstream:
        options.setdefault("headers", {"authorization": "Bearer sk-test"})
        options.setdefault("timeout", 5.0)
        options.setdefault("connect_timeout", 5.0)
        options.setdefault("error_mapper", map_openai_error)
        upstream = HttpUpstream(base_url, **options)
        await upstream.start()
        opened.append(upstream)
        return upstream

    yield open_upstream
    for upstream in opened:
        await upstream.close()


def echo(request_body: bytes) -> bytes:
    return orjson.dumps({"echo": orjson.loads(request_body)})


async def keep_alive_echo(connection: ServerConnection) -> None:
    """Answer every request on the connection with its JSON body, Content-Length framed."""
    while (request := await connection.read_request()) is not None:
        await connection.send(http_response(body=echo(request.body)))


async def collect(events: AsyncIterator[SSEEvent]) -> list[SSEEvent]:
    return [event async for event in events]


def sse(*payloads: str) -> list[bytes]:
    return [f"data: {payload}\n\n".encode() for payload in payloads]


# --- keep-alive, framing, request shape ---------------------------------------------


async def test_keep_alive_reuses_one_connection(serve: Served, upstreams) -> None:
    server = await serve(keep_alive_echo)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}/v1")
    for index in range(5):
        assert await upstream.post("chat/completions", {"n": index}) == {"echo": {"n": index}}
    assert len(server.connections) == 1
    assert len(server.requests) == 5


async def test_request_is_framed_with_content_length_and_configured_headers(
    serve: Served, upstreams
) -> None:
    server = await serve(keep_alive_echo)
    upstream = await upstreams(
        f"http://127.0.0.1:{server.port}/v1/",
        headers={"authorization": "Bearer sk-test", "X-Extra": "1", "Content-Length": "9"},
        query={"api-version": "2024-06-01"},
    )
    payload = {"model": "m", "messages": [{"role": "user", "content": "héllo"}]}
    await upstream.post("/chat/completions", payload)
    request = server.requests[0]
    assert request.request_line == "POST /v1/chat/completions?api-version=2024-06-01 HTTP/1.1"
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["x-extra"] == "1"
    assert request.headers["content-type"] == "application/json"
    # The transport owns the framing: a configured Content-Length is not sent.
    assert request.headers["content-length"] == str(len(request.body))
    assert "transfer-encoding" not in request.headers
    assert orjson.loads(request.body) == payload


async def test_chunked_response_body(serve: Served, upstreams) -> None:
    body = orjson.dumps({"choices": [{"message": {"content": "x" * 5000}}]})

    async def handler(connection: ServerConnection) -> None:
        while await connection.read_request() is not None:
            pieces = [body[i : i + 700] for i in range(0, len(body), 700)]
            await connection.send(chunked_head(content_type="application/json"))
            for piece in pieces:
                await connection.send(chunk(piece))
            await connection.send(LAST_CHUNK)

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    assert await upstream.post("chat", {}) == orjson.loads(body)
    assert await upstream.post("chat", {}) == orjson.loads(body)
    assert len(server.connections) == 1


async def test_body_ending_at_eof(serve: Served, upstreams) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.read_request()
        await connection.send(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"ok": ')
        await connection.send(b"true}")
        connection.close()

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    assert await upstream.post("chat", {}) == {"ok": True}
    assert await upstream.post("chat", {}) == {"ok": True}
    assert len(server.connections) == 2


async def test_connection_close_is_honoured(serve: Served, upstreams) -> None:
    async def handler(connection: ServerConnection) -> None:
        request = await connection.read_request()
        assert request is not None
        await connection.send(
            http_response(body=echo(request.body), headers=[("Connection", "close")])
        )
        # Keep our side open: the client must not reuse the connection anyway.
        await connection.until_client_leaves()

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    for index in range(3):
        assert await upstream.post("chat", {"n": index}) == {"echo": {"n": index}}
    assert len(server.connections) == 3
    for connection in server.connections:
        await asyncio.wait_for(connection.client_left.wait(), 5)


async def test_error_mapper_gets_status_body_and_case_insensitive_headers(
    serve: Served, upstreams
) -> None:
    seen: list[tuple[int, bytes, Mapping[str, str]]] = []

    def mapper(status: int, body: bytes, headers: Mapping[str, str]) -> PortwayError:
        seen.append((status, body, headers))
        return map_openai_error(status, body, headers)

    error_body = b'{"error": {"message": "slow down", "type": "rate_limit"}}'

    async def handler(connection: ServerConnection) -> None:
        while await connection.read_request() is not None:
            await connection.send(
                http_response(429, error_body, [("Retry-After", "7"), ("X-Multi", "a")])
            )

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}", error_mapper=mapper)
    with pytest.raises(UpstreamRateLimitError) as caught:
        await upstream.post("chat", {})
    assert caught.value.retry_after == 7
    with pytest.raises(UpstreamRateLimitError):
        await collect(upstream.stream("chat", {}))
    status, body, headers = seen[0]
    assert (status, body) == (429, error_body)
    assert headers["retry-after"] == headers["RETRY-AFTER"] == "7"
    assert headers.get("x-multi") == "a"
    assert "Retry-After" in headers
    # Error answers are read whole, so the connection stays reusable.
    assert len(server.connections) == 1


# --- the stale keep-alive race ------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
async def test_idle_connection_closed_by_server_is_retried_once(
    serve: Served, upstreams, streaming: bool
) -> None:
    async def handler(connection: ServerConnection) -> None:
        request = await connection.read_request()
        assert request is not None
        if connection.index == 0:
            await connection.send(http_response(body=echo(request.body)))
            # The keep-alive timeout "expires" as the next request arrives.
            await connection.read_request()
            return
        if streaming:
            await connection.send(chunked_head())
            await connection.send(chunk(b"data: [DONE]\n\n") + LAST_CHUNK)
        else:
            await connection.send(http_response(body=echo(request.body)))
        await keep_alive_echo(connection)

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    assert await upstream.post("chat", {"n": 1}) == {"echo": {"n": 1}}
    if streaming:
        events = await collect(upstream.stream("chat", {"n": 2}))
        assert events == [SSEEvent(None, "[DONE]")]
    else:
        assert await upstream.post("chat", {"n": 2}) == {"echo": {"n": 2}}
    assert len(server.connections) == 2
    assert [orjson.loads(r.body) for r in server.requests] == [{"n": 1}, {"n": 2}, {"n": 2}]


async def test_new_connection_closed_without_answer_is_not_retried(
    serve: Served, upstreams
) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.read_request()

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    with pytest.raises(UpstreamUnavailableError) as caught:
        await upstream.post("chat", {})
    # The cause is for the operator's log; clients never see the upstream's address.
    assert "closed the connection" in (caught.value.detail or "")
    assert len(server.requests) == 1


async def test_reused_connection_closed_mid_answer_is_not_retried(serve: Served, upstreams) -> None:
    async def handler(connection: ServerConnection) -> None:
        request = await connection.read_request()
        assert request is not None
        await connection.send(http_response(body=echo(request.body)))
        await connection.read_request()
        await connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    await upstream.post("chat", {})
    with pytest.raises(UpstreamUnavailableError) as caught:
        await upstream.post("chat", {})
    # The cause is for the operator's log; clients never see the upstream's address.
    assert "closed the connection" in (caught.value.detail or "")
    assert len(server.connections) == 1
    assert len(server.requests) == 2


async def test_idle_connections_expire(serve: Served) -> None:
    server = await serve(keep_alive_echo)
    client = HttpClient("http", "127.0.0.1", server.port, connect_timeout=5, idle_timeout=0.1)
    await client.start()
    try:
        head = client.head("POST", "/", {})
        await client.request(frame(head, b"{}"), total_timeout=5)
        assert client.open_connections == 1
        await asyncio.wait_for(server.connections[0].client_left.wait(), 5)
        assert client.open_connections == 0
    finally:
        await client.close()


# --- connect failures and timeouts --------------------------------------------------


async def test_connection_refused(upstreams) -> None:
    upstream = await upstreams(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UpstreamUnavailableError, match="Cannot reach the upstream"):
        await upstream.post("chat", {})
    with pytest.raises(UpstreamUnavailableError, match="Cannot reach the upstream"):
        await collect(upstream.stream("chat", {}))


async def test_connect_timeout_covers_a_tls_handshake_that_never_answers(
    serve: Served, upstreams
) -> None:
    # The server accepts TCP but never says a word of TLS: only the connect timeout
    # (short) can end the wait, not the total timeout (long).
    server = await serve(ServerConnection.until_client_leaves)
    upstream = await upstreams(f"https://127.0.0.1:{server.port}", connect_timeout=0.2, timeout=30)
    with pytest.raises(UpstreamTimeoutError, match="did not answer in time"):
        await upstream.post("chat", {})
    await asyncio.wait_for(server.connections[0].client_left.wait(), 5)


async def test_total_timeout_when_the_server_never_answers(serve: Served, upstreams) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.read_request()
        await connection.until_client_leaves()

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}", timeout=0.2)
    with pytest.raises(UpstreamTimeoutError):
        await upstream.post("chat", {})
    # The timed-out connection is closed, never reused.
    await asyncio.wait_for(server.connections[0].client_left.wait(), 5)


async def test_total_timeout_bounds_a_body_that_keeps_trickling(serve: Served, upstreams) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.read_request()
        await connection.send(chunked_head(content_type="application/json"))
        while True:  # a byte every 20 ms: never idle, never finished
            await connection.send(chunk(b" "))
            await asyncio.sleep(0.02)

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}", timeout=0.25)
    with pytest.raises(UpstreamTimeoutError):
        await upstream.post("chat", {})
    await asyncio.wait_for(server.connections[0].client_left.wait(), 5)


# --- streams ------------------------------------------------------------------------


async def test_stream_yields_events_as_they_arrive(serve: Served, upstreams) -> None:
    first_seen = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        while await connection.read_request() is not None:
            await connection.send(chunked_head())
            await connection.send(chunk(b'event: delta\ndata: {"n": 1}\n\n'))
            await first_seen.wait()  # the second event only after the first was consumed
            await connection.send(chunk(b'data: {"n": 2}\r\n\r\ndata: [DONE]\n\n'))
            await connection.send(LAST_CHUNK)

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    events = []
    async for event in upstream.stream("chat", {"stream": True}):
        events.append(event)
        first_seen.set()
    assert events == [
        SSEEvent("delta", '{"n": 1}'),
        SSEEvent(None, '{"n": 2}'),
        SSEEvent(None, "[DONE]"),
    ]
    # A stream read to its end hands its connection back.
    first_seen.set()
    assert len(await collect(upstream.stream("chat", {"stream": True}))) == 3
    assert len(server.connections) == 1


async def test_stream_idle_timeout_is_per_read(serve: Served, upstreams) -> None:
    async def handler(connection: ServerConnection) -> None:
        request = await connection.read_request()
        assert request is not None
        await connection.send(chunked_head())
        for index in range(6):  # 6 x 50 ms: longer than the timeout, never idle that long
            await connection.send(chunk(f"data: {index}\n\n".encode()))
            await asyncio.sleep(0.05)
        if orjson.loads(request.body)["stall"]:
            await connection.until_client_leaves()
        else:
            await connection.send(LAST_CHUNK)

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}", timeout=0.2)
    events = await collect(upstream.stream("chat", {"stall": False}))
    assert [event.data for event in events] == [str(i) for i in range(6)]

    received: list[SSEEvent] = []
    with pytest.raises(UpstreamTimeoutError, match="stalled"):
        async for event in upstream.stream("chat", {"stall": True}):
            received.append(event)
    assert len(received) == 6
    await asyncio.wait_for(server.connections[-1].client_left.wait(), 5)


async def test_stream_dropped_mid_body(serve: Served, upstreams) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.read_request()
        await connection.send(chunked_head())
        await connection.send(chunk(b"data: 1\n\n"))

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    received: list[SSEEvent] = []
    with pytest.raises(UpstreamError, match="dropped the stream"):
        async for event in upstream.stream("chat", {}):
            received.append(event)
    assert received == [SSEEvent(None, "1")]


async def test_closing_a_stream_early_closes_the_connection(serve: Served, upstreams) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.read_request()
        await connection.send(chunked_head())
        await connection.send(chunk(b"data: 1\n\n"))
        await connection.until_client_leaves()

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")
    events = upstream.stream("chat", {})
    assert await anext(events) == SSEEvent(None, "1")
    await events.aclose()
    await asyncio.wait_for(server.connections[0].client_left.wait(), 5)
    # The half-read connection was not pooled: the next call opens a new one.
    again = upstream.stream("chat", {})
    assert await anext(again) == SSEEvent(None, "1")
    await again.aclose()
    assert len(server.connections) == 2


async def test_cancelling_the_caller_closes_the_connection(serve: Served, upstreams) -> None:
    requested = asyncio.Event()
    streamed = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        request = await connection.read_request()
        assert request is not None
        requested.set()
        if orjson.loads(request.body)["stream"]:
            await connection.send(chunked_head())
            await connection.send(chunk(b"data: 1\n\n"))
        await connection.until_client_leaves()

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}")

    posting = asyncio.create_task(upstream.post("chat", {"stream": False}))
    await asyncio.wait_for(requested.wait(), 5)
    posting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await posting
    await asyncio.wait_for(server.connections[0].client_left.wait(), 5)

    async def consume() -> None:
        async for _ in upstream.stream("chat", {"stream": True}):
            streamed.set()

    streaming = asyncio.create_task(consume())
    await asyncio.wait_for(streamed.wait(), 5)
    streaming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await streaming
    await asyncio.wait_for(server.connections[1].client_left.wait(), 5)


# --- TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


async def test_https_with_a_custom_trust_store_and_sni(
    serve: Served, upstreams, certificate_authority: trustme.CA
) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    client_context = ssl.create_default_context()
    certificate_authority.configure_trust(client_context)

    server = await serve(keep_alive_echo, server_context)
    upstream = await upstreams(f"https://localhost:{server.port}/v1", ssl_context=client_context)
    assert await upstream.post("chat", {"n": 1}) == {"echo": {"n": 1}}
    assert await upstream.post("chat", {"n": 2}) == {"echo": {"n": 2}}
    assert len(server.connections) == 1
    assert server_names == ["localhost"]
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"


async def test_https_rejects_an_untrusted_certificate(
    serve: Served, upstreams, certificate_authority: trustme.CA
) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(server_context)
    server = await serve(keep_alive_echo, server_context)
    upstream = await upstreams(f"https://127.0.0.1:{server.port}")  # system trust store
    with pytest.raises(UpstreamUnavailableError) as caught:
        await upstream.post("chat", {})
    assert "CERTIFICATE_VERIFY_FAILED" in (caught.value.detail or "")
    assert server.requests == []


# --- the bounded pool ---------------------------------------------------------------


async def test_concurrent_requests_share_a_bounded_pool(serve: Served, upstreams) -> None:
    in_flight = 0
    most_in_flight = 0

    async def handler(connection: ServerConnection) -> None:
        nonlocal in_flight, most_in_flight
        while (request := await connection.read_request()) is not None:
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1
            await connection.send(http_response(body=echo(request.body)))

    server = await serve(handler)
    upstream = await upstreams(f"http://127.0.0.1:{server.port}", max_connections=3)
    results = await asyncio.gather(*(upstream.post("chat", {"n": n}) for n in range(40)))
    assert results == [{"echo": {"n": n}} for n in range(40)]
    assert len(server.connections) == 3
    assert most_in_flight == 3
    assert len(server.requests) == 40


async def test_waiters_are_served_in_arrival_order(serve: Served) -> None:
    release = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        while (request := await connection.read_request()) is not None:
            if orjson.loads(request.body) == 0:
                await release.wait()
            await connection.send(http_response(body=request.body))

    server = await serve(handler)
    client = HttpClient("http", "127.0.0.1", server.port, connect_timeout=5, max_connections=1)
    await client.start()
    head = client.head("POST", "/", {})
    try:
        tasks = []
        for n in range(6):
            tasks.append(asyncio.create_task(client.request(frame(head, b"%d" % n), 5)))
            await asyncio.sleep(0)  # let each one queue before the next
        release.set()
        responses = await asyncio.gather(*tasks)
        assert [response.body for response in responses] == [b"%d" % n for n in range(6)]
        assert [request.body for request in server.requests] == [b"%d" % n for n in range(6)]
        assert len(server.connections) == 1
    finally:
        await client.close()


async def test_a_waiter_that_gives_up_does_not_leak_its_slot(serve: Served) -> None:
    release = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        while (request := await connection.read_request()) is not None:
            if request.body == b"slow":
                await release.wait()
            await connection.send(http_response(body=request.body))

    server = await serve(handler)
    client = HttpClient("http", "127.0.0.1", server.port, connect_timeout=5, max_connections=1)
    await client.start()
    head = client.head("POST", "/", {})
    try:
        slow = asyncio.create_task(client.request(frame(head, b"slow"), 5))
        await asyncio.sleep(0.01)
        with pytest.raises(TransportTimeout):
            await client.request(frame(head, b"late"), 0.05)
        cancelled = asyncio.create_task(client.request(frame(head, b"cancelled"), 5))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        release.set()
        assert (await slow).body == b"slow"
        assert (await client.request(frame(head, b"next"), 5)).body == b"next"
        assert cancelled.cancelled()
        assert client.open_connections == 1
        assert [request.body for request in server.requests] == [b"slow", b"next"]
    finally:
        await client.close()


async def test_a_large_stream_read_slowly_arrives_intact(serve: Served) -> None:
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB: past the read-pause threshold

    async def handler(connection: ServerConnection) -> None:
        await connection.read_request()
        await connection.send(chunked_head(content_type="application/octet-stream"))
        for offset in range(0, len(payload), 256 * 1024):
            await connection.send(chunk(payload[offset : offset + 256 * 1024]))
        await connection.send(LAST_CHUNK)
        await connection.until_client_leaves()

    server = await serve(handler)
    client = HttpClient("http", "127.0.0.1", server.port, connect_timeout=5)
    await client.start()
    try:
        response = await client.stream(frame(client.head("POST", "/", {}), b""), 5)
        received = bytearray()
        while piece := await response.next_chunk(5):
            received += piece
            await asyncio.sleep(0.01)  # a slow consumer lets the buffer fill
        response.close()
        assert bytes(received) == payload
        assert client.open_connections == 1  # read to the end: kept for reuse
    finally:
        await client.close()


# --- server-sent events -------------------------------------------------------------


def decode(*pieces: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.finish()


def test_sse_lines_may_split_anywhere_including_inside_crlf() -> None:
    wire = b'event: a\r\ndata: {"x":\r\ndata:  1}\r\n\r\n: comment\r\nid: 7\r\ndata: two\r\n\r\n'
    expected = [SSEEvent("a", '{"x":\n 1}'), SSEEvent(None, "two")]
    assert decode(wire) == expected
    for cut in range(1, len(wire)):
        assert decode(wire[:cut], wire[cut:]) == expected, cut
    assert decode(*(bytes([b]) for b in wire)) == expected


def test_sse_line_endings_and_field_forms() -> None:
    assert decode(b"data: a\rdata: b\r\rdata\n\n") == [SSEEvent(None, "a\nb"), SSEEvent(None, "")]
    assert decode(b"event: ping\n\ndata: x\n\n") == [SSEEvent(None, "x")]
    assert decode("data: é€\n\n".encode()[:9], "data: é€\n\n".encode()[9:]) == [
        SSEEvent(None, "é€")
    ]


def test_sse_last_event_without_blank_line_is_kept() -> None:
    assert decode(b"data: 1\n\ndata: [DONE]") == [SSEEvent(None, "1"), SSEEvent(None, "[DONE]")]
    assert decode(b"data: 1\n\ndata: 2\r") == [SSEEvent(None, "1"), SSEEvent(None, "2")]


@pytest.mark.parametrize(
    "headers", [{"x-bad": "a\r\nx-injected: 1"}, {"bad name": "v"}, {"x-key": "ключ"}]
)
def test_headers_http_cannot_carry_are_rejected_at_construction(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        HttpUpstream(
            "http://127.0.0.1:1",
            headers=headers,
            timeout=1,
            connect_timeout=1,
            error_mapper=map_openai_error,
        )
