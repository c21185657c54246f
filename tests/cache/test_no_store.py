"""Zero-retention (``no_store``) keys: nothing of theirs lands in any cache."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cache.conftest import ask, sdk
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-no-store"


@pytest.fixture(scope="module")
def server(
    start_portway: PortwayFactory,
    fake_openai_server: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> PortwayServer:
    base_url = fake_openai_server.base_url
    cache_file = tmp_path_factory.mktemp("no-store") / "cache.db"
    return start_portway(
        {
            "master_key": MASTER,
            "models": [fake_model("fake-gpt", base_url), fake_model("fake-embed", base_url)],
            "cache": {
                "enabled": True,
                "backend": "sqlite",
                "sqlite_path": str(cache_file),
                "semantic": {"enabled": True, "embedding_model": "fake-embed"},
                "models": {"fake-embed": {"enabled": False}},
            },
        }
    )


def _admin(server: PortwayServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {MASTER}"})


def _key(server: PortwayServer, **fields: Any) -> str:
    with _admin(server) as http:
        response = http.post("/v1/admin/keys", json=fields)
    assert response.status_code == 201, response.text
    return response.json()["key"]  # type: ignore[no-any-return]


def _stats(server: PortwayServer) -> dict[str, Any]:
    with _admin(server) as http:
        return http.get("/v1/admin/cache/stats").json()  # type: ignore[no-any-return]


def _chats(fake: FakeOpenAI) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


@pytest.mark.parametrize("stream", [False, True])
def test_a_no_store_keys_answers_are_never_cached(
    server: PortwayServer, fake_openai: FakeOpenAI, prompt: str, stream: bool
) -> None:
    before = _stats(server)
    client = sdk(server, _key(server, name="zero-retention", team="zr", no_store=True))
    for _ in range(2):
        if stream:
            raw = client.chat.completions.with_raw_response.create(
                model="fake-gpt",
                messages=[{"role": "user", "content": prompt}],
                temperature=0,
                stream=True,
            )
            for _chunk in raw.parse():
                pass
            status = raw.headers.get("x-portway-cache")
        else:
            status = ask(client, prompt)[0]
        assert status == "bypass"
    assert _chats(fake_openai) == 2  # the second identical call went upstream too
    after = _stats(server)
    assert after["entries"] == before["entries"]
    assert after["bytes"] == before["bytes"]
    assert after["semantic"]["entries"] == before["semantic"]["entries"]
    # The prompt was not even embedded for the semantic index.
    assert not [r for r in fake_openai.requests if r.path.endswith("/embeddings")]


def test_an_ordinary_key_is_cached_by_the_same_server(
    server: PortwayServer, fake_openai: FakeOpenAI, prompt: str
) -> None:
    before = _stats(server)
    client = sdk(server, _key(server, name="ordinary", team="ord"))
    assert ask(client, prompt)[0] == "miss"
    assert ask(client, prompt)[0] == "hit"
    assert _chats(fake_openai) == 1
    assert _stats(server)["entries"] == before["entries"] + 1
