"""Run an aiohttp fake upstream or a Portway app on loopback in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import openai
import uvicorn
from aiohttp import web

from portway.http_protocol import CoalescingHttpToolsProtocol


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refused_base_url() -> str:
    """A loopback URL nobody listens on: connecting to it is refused at once."""
    return f"http://127.0.0.1:{free_port()}/v1"


class BackgroundServer:
    """An aiohttp app served from its own thread and event loop; subclasses build the app."""

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def build_app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._runner = web.AppRunner(self.build_app(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name=type(self).__name__)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake server did not start")

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)


class PortwayServer:
    """A real Portway (uvicorn + the ASGI app) on a loopback port, in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            loop="asyncio",
            http=CoalescingHttpToolsProtocol,  # what `portway serve` runs
            lifespan="on",
        )
        self.app = app
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="portway")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def sdk(self, key: str = "unused", **options: Any) -> openai.OpenAI:
        """The OpenAI SDK pointed at this Portway with ``key``; it never retries by itself."""
        return openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, **options)

    def admin(self, master: str) -> httpx.Client:
        """An HTTP client of this Portway's admin API, as the master key."""
        return httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {master}"})

    def create_key(self, master: str, **fields: Any) -> dict[str, Any]:
        """A new virtual key (``POST /v1/admin/keys``); its JSON carries the secret ``key``."""
        with self.admin(master) as http:
            response = http.post("/v1/admin/keys", json=fields)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def start(self, timeout: float = 120.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("Portway failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError("Portway did not start in time")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)
