"""Bounds a client cannot lift: the TTL it may ask for, the bytes the SQLite cache may hold."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.cache.conftest import CacheServerFactory, ask, sdk
from tests.fakes.openai_upstream import FakeOpenAI

MAX_BYTES = 4096


def test_a_client_ttl_cannot_outlast_the_models_ttl(
    serve_cached: CacheServerFactory, fake_openai: FakeOpenAI, prompt: str
) -> None:
    server = serve_cached(ttl=0.3)
    client = sdk(server)
    forever = {"x-portway-cache-ttl": str(10 * 365 * 86400)}
    assert ask(client, prompt, headers=forever)[0] == "miss"
    assert ask(client, prompt)[0] == "hit"
    time.sleep(0.4)
    assert ask(client, prompt)[0] == "miss"  # kept for the model's 0.3 s, not ten years
    assert len(fake_openai.requests) == 2


def test_max_ttl_lets_clients_ask_for_more(
    serve_cached: CacheServerFactory, fake_openai: FakeOpenAI, prompt: str
) -> None:
    server = serve_cached(ttl=0.3, max_ttl=60)
    client = sdk(server)
    assert ask(client, prompt, headers={"x-portway-cache-ttl": "30"})[0] == "miss"
    time.sleep(0.4)
    assert ask(client, prompt)[0] == "hit"


def test_the_sqlite_backend_stays_within_max_bytes(
    serve_cached: CacheServerFactory, fake_openai: FakeOpenAI, tmp_path: Path, prompt: str
) -> None:
    server = serve_cached(
        backend="sqlite", sqlite_path=str(tmp_path / "cache.db"), max_bytes=MAX_BYTES
    )
    client = sdk(server)
    prompts = [f"{prompt} #{i} " + "x" * 300 for i in range(30)]
    for text in prompts:
        assert ask(client, text)[0] == "miss"
    stats = httpx.get(f"{server.base_url}/admin/cache/stats").json()
    assert 0 < stats["bytes"] <= MAX_BYTES
    assert stats["entries"] < len(prompts)
    assert ask(client, prompts[-1])[0] == "hit"  # the newest entries stay
    assert ask(client, prompts[0])[0] == "miss"  # the oldest were evicted
