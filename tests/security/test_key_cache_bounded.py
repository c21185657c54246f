"""The key lookup cache stays bounded however many distinct secrets are presented."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-cache"
CACHE_TTL = 0.05
UNKNOWN_SECRETS = 300


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "keys": {"cache_ttl_seconds": CACHE_TTL},
            "models": [fake_model("fake-gpt", fake_openai_server.base_url)],
        }
    )


def _call(http: httpx.Client, secret: str) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        headers={"authorization": f"Bearer {secret}"},
        json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
    )


def test_unknown_secrets_do_not_pile_up_in_the_key_cache(server: PortwayServer) -> None:
    keys = server.app.state.services.accounting.keys
    with httpx.Client(base_url=server.url) as http:
        for _ in range(UNKNOWN_SECRETS):
            assert _call(http, "pw-" + secrets.token_urlsafe(32)).status_code == 401
        # Every lookup above has expired by now (the TTL is 50 ms); the next miss sweeps.
        time.sleep(CACHE_TTL * 2)
        assert _call(http, "pw-" + secrets.token_urlsafe(32)).status_code == 401
    # Before the fix each distinct secret stayed cached until 100,000 had piled up.
    assert keys.cached_entries == 1
