"""Listening sockets the supervisor binds once and its children inherit."""

from __future__ import annotations

import socket

# uvicorn's own default backlog.
BACKLOG = 2048


def reuseport_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one address with ``SO_REUSEPORT``.

    The kernel spreads new connections evenly over them (one per worker), unlike one shared
    socket whose accepts go to whichever worker wakes first. The first bind picks the port
    when ``port`` is 0; the others join it.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listeners: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(address)
            address = sock.getsockname()  # the port the first bind picked
            sock.listen(BACKLOG)
    except OSError:
        for sock in listeners:
            sock.close()
        raise
    return listeners


def loopback_listener() -> socket.socket:
    """A socket on 127.0.0.1 at a port the OS picks (the model host's)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(BACKLOG)
    return sock
