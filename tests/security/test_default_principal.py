"""A request the authenticating edge never saw has no rights: it fails closed, never as admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portway.app import create_app
from portway.config import Settings
from tests.conftest import fake_model, with_private_state
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer


@pytest.fixture(scope="module")
def unguarded(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PortwayServer]:
    """The routes served without the edge middleware, as a wiring mistake would leave them."""
    settings = {
        "master_key": "sk-master-default-principal",
        "models": [fake_model("fake-gpt", fake_openai_server.base_url)],
    }
    directory: Path = tmp_path_factory.mktemp("unguarded")
    app = create_app(Settings.model_validate(with_private_state(settings, directory)))
    server = PortwayServer(app.api)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/admin/keys", None),
        ("POST", "/v1/admin/keys", {"name": "escalated"}),
        ("GET", "/v1/admin/usage", None),
        ("GET", "/v1/admin/cache/stats", None),
        ("GET", "/v1/files", None),
        ("GET", "/v1/models", None),
        (
            "POST",
            "/v1/chat/completions",
            {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
        ),
    ],
)
def test_without_a_principal_every_call_is_refused(
    unguarded: PortwayServer, fake_openai: FakeOpenAI, method: str, path: str, body: object
) -> None:
    response = httpx.request(method, f"{unguarded.url}{path}", json=body)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert not fake_openai.requests
