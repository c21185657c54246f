"""Several Portways sharing one Redis: exact entries, the semantic index, purges."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis
import yaml

from tests.cache.conftest import CacheServerFactory, ask, cached_settings, sdk
from tests.conftest import service_unavailable
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer, free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    """A key prefix of this module's own; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        service_unavailable("Redis is not reachable at 127.0.0.1:6379")
    name = f"portway-test:{uuid.uuid4().hex[:12]}:"
    yield name
    stale = list(client.scan_iter(match=f"{name}*"))
    if stale:
        client.delete(*stale)
    client.close()


@pytest.fixture(scope="module")
def pair(
    serve_cached: CacheServerFactory, fake_openai_server: FakeOpenAI, prefix: str
) -> tuple[PortwayServer, PortwayServer]:
    settings = cached_settings(
        fake_openai_server,
        backend="redis",
        redis_prefix=prefix,
        semantic={"enabled": True, "threshold": 0.85, "index": "redis"},
    )
    settings["redis_url"] = REDIS_URL
    return serve_cached(settings), serve_cached(settings)


def test_an_answer_stored_by_one_server_is_a_hit_on_the_other(
    pair: tuple[PortwayServer, PortwayServer], fake_openai: FakeOpenAI, prompt: str
) -> None:
    one, two = pair
    assert ask(sdk(one), prompt)[0] == "miss"
    status, completion, _ = ask(sdk(two), prompt)
    assert status == "hit" and completion.choices[0].message.content == f"echo: {prompt}"
    assert ask(sdk(two, "key-a"), prompt)[0] == "miss"  # another tenant, even in Redis
    assert len(fake_openai.requests) == 2


def test_semantic_index_is_shared(
    pair: tuple[PortwayServer, PortwayServer], fake_openai: FakeOpenAI, prompt: str
) -> None:
    one, two = pair
    scoped = {"x-portway-cache-namespace": prompt}
    ask(sdk(one), "How do I reset my password?", headers=scoped)
    status, completion, _ = ask(sdk(two), "How can I reset my password?", headers=scoped)
    assert status == "semantic-hit"
    assert completion.choices[0].message.content == "echo: How do I reset my password?"
    assert len(fake_openai.requests) == 1


def test_purge_on_one_server_clears_both(
    pair: tuple[PortwayServer, PortwayServer], fake_openai: FakeOpenAI, prompt: str
) -> None:
    one, two = pair
    scoped = {"x-portway-cache-namespace": prompt}
    ask(sdk(one), "What is the capital of France?", headers=scoped)
    purged = httpx.delete(
        f"{one.base_url}/admin/cache", params={"namespace": f"default/{prompt}"}
    ).json()
    assert purged["deleted"] == 1
    assert ask(sdk(two), "What is the capital of France?", headers=scoped)[0] == "miss"
    assert ask(sdk(two), "what is the capital of france", headers=scoped)[0] == "semantic-hit"
    stats = httpx.get(f"{two.base_url}/admin/cache/stats").json()
    assert stats["backend"] == "redis" and stats["entries"] >= 1
    assert stats["semantic"]["index"] == "redis"


@pytest.mark.slow
def test_two_processes_share_the_cache(
    pair: tuple[PortwayServer, PortwayServer],
    fake_openai_server: FakeOpenAI,
    fake_openai: FakeOpenAI,
    prefix: str,
    tmp_path: Path,
    prompt: str,
) -> None:
    settings = cached_settings(fake_openai_server, backend="redis", redis_prefix=prefix)
    settings["redis_url"] = REDIS_URL
    config = tmp_path / "portway.yaml"
    config.write_text(yaml.safe_dump(settings))
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "portway", "serve", "--config", str(config), "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the Portway process did not start"
            time.sleep(0.1)
        in_process = pair[0]
        assert ask(sdk(in_process), prompt)[0] == "miss"
        other = openai.OpenAI(base_url=f"{base}/v1", api_key="anonymous", max_retries=0)
        assert ask(other, prompt)[0] == "hit"
        assert len(fake_openai.requests) == 1
    finally:
        process.terminate()
        process.wait(10)
