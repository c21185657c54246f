"""uvicorn's httptools protocol, sending a response's head with its first body bytes.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, then the body in a second ``write(2)``. On loopback and in a
container network each ``send`` costs the kernel a whole delivery to the peer, about as
much CPU as Portway's own handling of a header block, so here the connection's transport
holds a response head back until the next write (the body, or a stream's first chunk)
and sends both in one call. A head with nothing after it in the same event loop iteration
(a stream whose first chunk is not ready yet) leaves at the end of that iteration.
Nothing else is held: a stream's chunks leave as they are written.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_RESPONSE_HEAD = b"HTTP/1.1 "  # how uvicorn's every status line starts


class CoalescingTransport:
    """Holds a response head until the next write or the end of the loop iteration."""

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif data[:9] == _RESPONSE_HEAD:
            self._head = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        # The peer may have gone in the meantime: a closed uvloop transport raises on write.
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (is_closing, get_extra_info, pause_reading, ...) is the socket's.
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol whose writes go through a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
