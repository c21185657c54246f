"""Fixtures of the multi-process tests: a reachable Redis, a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from tests.conftest import service_unavailable
from tests.storage import postgres_database

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.ConnectionError, OSError) as exc:
        service_unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    yield REDIS_URL


@pytest.fixture(scope="module")
async def shared_database() -> AsyncIterator[str]:
    """A PostgreSQL database for the processes of one test module."""
    async with postgres_database() as url:
        yield url
