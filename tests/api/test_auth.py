"""The master key guards every /v1 call; health probes stay open."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import fake_model
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches


@pytest.fixture(scope="module")
def locked(start_portway, fake_openai_server) -> PortwayServer:
    return start_portway(
        {
            "master_key": "sk-master-test",
            "models": [fake_model("fake-gpt", fake_openai_server.base_url)],
        }
    )


def test_missing_key_is_401(locked: PortwayServer) -> None:
    response = httpx.get(f"{locked.base_url}/models")
    assert response.status_code == 401
    assert_matches("ErrorResponse", response.json())
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_wrong_key_is_401_via_sdk(locked: PortwayServer) -> None:
    client = locked.sdk("sk-wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "x"}]
        )
    assert "sk-wrong" not in str(caught.value)


def test_master_key_works(locked: PortwayServer) -> None:
    client = locked.sdk("sk-master-test")
    completion = client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "x"}]
    )
    assert completion.choices[0].message.content == "echo: x"


def test_auth_is_checked_before_the_body(locked: PortwayServer) -> None:
    response = httpx.post(f"{locked.base_url}/chat/completions", content=b"{broken")
    assert response.status_code == 401


def test_health_needs_no_key(locked: PortwayServer) -> None:
    assert httpx.get(f"{locked.url}/health/live").json() == {"status": "ok"}
    ready = httpx.get(f"{locked.url}/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
