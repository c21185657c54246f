"""The SQLite backend behind a real Portway: answers outlive the process that stored them."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cache.conftest import CacheServerFactory, ask, sdk
from tests.fakes.openai_upstream import FakeOpenAI


def test_entries_survive_a_restart(
    serve_cached: CacheServerFactory, fake_openai: FakeOpenAI, tmp_path: Path, prompt: str
) -> None:
    location = str(tmp_path / "cache.db")
    first = serve_cached(backend="sqlite", sqlite_path=location)
    assert ask(sdk(first), prompt)[0] == "miss"
    assert ask(sdk(first), prompt)[0] == "hit"
    first.stop()
    second = serve_cached(backend="sqlite", sqlite_path=location)
    status, completion, _ = ask(sdk(second), prompt)
    assert status == "hit" and completion.choices[0].message.content == f"echo: {prompt}"
    assert len(fake_openai.requests) == 1
    stats = httpx.get(f"{second.base_url}/admin/cache/stats").json()
    assert (stats["backend"], stats["entries"]) == ("sqlite", 1)
