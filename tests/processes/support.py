"""Helpers of the multi-process tests: keys through the admin API, rows read back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx


def create_key(url: str, master: str, **fields: Any) -> tuple[str, str]:
    """A new virtual key (id, secret) through ``POST /v1/admin/keys``."""
    response = httpx.post(
        f"{url}/v1/admin/keys",
        json=fields,
        headers={"authorization": f"Bearer {master}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


async def rows(database_url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        return [dict(row) for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()


def eventually(check: Callable[[], Any], what: str, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return result
