"""Cache fixtures: Portways with the cache on, in front of the fake OpenAI upstream.

The servers authenticate with a small key table, so tenancy is tested over real HTTP:
``key-a`` and ``key-b`` are virtual keys of two teams, any other token is anonymous
(an admin, since no master key is set).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from portway.app import create_app
from portway.config import Settings
from portway.security.principal import ANONYMOUS, Principal
from tests.conftest import fake_model, with_private_state
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

TENANTS = {
    "key-a": Principal(kind="virtual_key", key_id="a", team="team-a"),
    "key-b": Principal(kind="virtual_key", key_id="b", team="team-b"),
}
CacheServerFactory = Callable[..., PortwayServer]


class TenantKeys:
    async def authenticate(self, token: str | None) -> Principal:
        return TENANTS.get(token or "", ANONYMOUS)


def cached_settings(upstream: FakeOpenAI, **cache: Any) -> dict[str, Any]:
    models = [fake_model(name, upstream.base_url) for name in ("fake-gpt", "fake-gpt-2")]
    return {"models": models, "cache": {"enabled": True, **cache}}


@pytest.fixture(scope="module")
def serve_cached(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CacheServerFactory]:
    """Start Portways (cache on) with extra cache/settings keys; stopped when the module ends."""
    servers: list[PortwayServer] = []

    def start(settings: dict[str, Any] | None = None, **cache: Any) -> PortwayServer:
        config = settings or cached_settings(fake_openai_server, **cache)
        config = with_private_state(config, tmp_path_factory.mktemp("cached"))
        app = create_app(Settings.model_validate(config))
        app.state.services.authenticator = TenantKeys()
        server = PortwayServer(app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def sdk(server: PortwayServer, key: str = "anonymous") -> openai.OpenAI:
    return server.sdk(key)


def ask(
    client: openai.OpenAI,
    content: str | list[dict[str, Any]],
    *,
    headers: dict[str, str] | None = None,
    model: str = "fake-gpt",
    messages: list[dict[str, Any]] | None = None,
    **params: Any,
) -> tuple[str | None, Any, Any]:
    """One non-streamed call: (x-portway-cache header, completion, all headers)."""
    params.setdefault("temperature", 0)
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=messages or [{"role": "user", "content": content}],
        extra_headers=headers or {},
        **params,
    )
    return raw.headers.get("x-portway-cache"), raw.parse(), raw.headers


@pytest.fixture
def prompt(request: pytest.FixtureRequest) -> str:
    """A question no other test asks, so module-scoped caches never leak between tests."""
    return f"{request.node.name} {uuid.uuid4().hex[:8]}"
