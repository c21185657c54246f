"""A tier rule is reached by the key's own tier; a client's claim counts only when trusted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-tier"
RULES = [{"when": {"tier": "premium"}, "use": "large"}, {"use": "small"}]


@pytest.fixture(scope="module")
def gateway(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    base_url = fake_openai_server.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "models": [fake_model("small", base_url), fake_model("large", base_url)],
            "router": {
                "auto": {"rules": RULES},
                "auto-trusting": {"rules": RULES, "trust_client_tier": True},
            },
        }
    )


def _key(gateway: PortwayServer, **metadata: str) -> str:
    response = httpx.post(
        f"{gateway.url}/v1/admin/keys",
        json={"name": "k", "metadata": metadata},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["key"]  # type: ignore[no-any-return]


def _route(
    gateway: PortwayServer, key: str, model: str, headers: dict[str, str], **body: Any
) -> str:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **body},
        headers={"authorization": f"Bearer {key}", **headers},
    )
    assert response.status_code == 200, response.text
    return response.headers["x-portway-route"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [({"x-portway-tier": "premium"}, {}), ({}, {"metadata": {"tier": "premium"}})],
    ids=["header", "metadata"],
)
def test_a_claimed_tier_is_ignored_by_default(
    gateway: PortwayServer, fake_openai: FakeOpenAI, headers: dict[str, str], body: Any
) -> None:
    assert _route(gateway, _key(gateway), "auto", headers, **body) == "small"
    assert _route(gateway, _key(gateway), "auto-trusting", headers, **body) == "large"


def test_the_keys_own_tier_counts_and_beats_a_claim(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    assert _route(gateway, _key(gateway, tier="premium"), "auto", {}) == "large"
    free = _key(gateway, tier="free")
    assert _route(gateway, free, "auto-trusting", {"x-portway-tier": "premium"}) == "small"
