"""Routing fixtures: three fake upstreams to play separate deployments, and a client helper."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer


@pytest.fixture(scope="session")
def upstream_servers() -> Iterator[list[FakeOpenAI]]:
    servers = [FakeOpenAI() for _ in range(3)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def upstreams(upstream_servers: list[FakeOpenAI]) -> Iterator[list[FakeOpenAI]]:
    for server in upstream_servers:
        server.reset()
    yield upstream_servers
    for server in upstream_servers:
        server.reset()


def deployment(name: str, upstream: FakeOpenAI | str, **extra: Any) -> dict[str, Any]:
    """A model entry pointing at a fake upstream (or any base URL)."""
    base_url = upstream if isinstance(upstream, str) else upstream.base_url
    return fake_model(name, base_url, **extra)


class Gateway:
    """A started Portway and an HTTP client for it."""

    def __init__(self, server: PortwayServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def chat(
        self, model: str, text: str = "hi", headers: dict[str, str] | None = None, **body: Any
    ) -> httpx.Response:
        payload = {"model": model, "messages": [{"role": "user", "content": text}], **body}
        return self.http.post("/v1/chat/completions", json=payload, headers=headers or {})

    def stream_events(
        self, model: str, text: str = "hi", **body: Any
    ) -> tuple[httpx.Response, list[str]]:
        """The response (status, headers) and its raw SSE data payloads."""
        payload = {
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "stream": True,
            **body,
        }
        with self.http.stream("POST", "/v1/chat/completions", json=payload) as response:
            raw = response.read().decode()
        events = [event.removeprefix("data: ") for event in raw.split("\n\n") if event]
        return response, events

    def health(self) -> dict[str, dict[str, Any]]:
        rows = self.http.get("/health/deployments").json()["data"]
        return {row["id"]: row for row in rows}


@pytest.fixture
def gateway_for(start_portway: PortwayFactory) -> Iterator[Any]:
    clients: list[Gateway] = []

    def start(
        models: list[dict[str, Any]], router: dict[str, Any] | None = None, **settings: Any
    ) -> Gateway:
        gateway = Gateway(start_portway({"models": models, "router": router or {}, **settings}))
        clients.append(gateway)
        return gateway

    yield start
    for gateway in clients:
        gateway.http.close()
        gateway.server.stop()
