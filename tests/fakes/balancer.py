"""A tiny round-robin TCP load balancer on loopback, in a background thread.

Each client connection goes to the next backend in turn; a backend that refuses the
connection (stopped, killed) is skipped, as nginx does with ``proxy_next_upstream error``.
Bytes are relayed both ways unchanged, so HTTP keep-alive and streams pass through.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading


class RoundRobinBalancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self._backends = backends
        self._turn = itertools.cycle(range(len(backends)))
        self.port = 0
        self.connections = [0] * len(backends)  # relayed, per backend
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="lb")
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> RoundRobinBalancer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", 0), self._loop
        )
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        upstream = await self._connect()
        if upstream is None:
            client_out.close()
            return
        upstream_in, upstream_out = upstream
        try:
            await asyncio.gather(
                self._pipe(client_in, upstream_out), self._pipe(upstream_in, client_out)
            )
        finally:
            for writer in (client_out, upstream_out):
                writer.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in self._backends:
            index = next(self._turn)
            try:
                connection = await asyncio.open_connection(*self._backends[index])
            except OSError:
                continue
            self.connections[index] += 1
            return connection
        return None

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        with contextlib.suppress(OSError):
            if sink.can_write_eof():
                sink.write_eof()
