"""Helpers for Responses API tests: raw HTTP calls and stream checks against the spec."""

from __future__ import annotations

import functools
from typing import Any

import httpx
import orjson

from portway.store import Database
from portway.store.usage import UsageFilter, UsageRepository
from tests.assistants.support import TEAM_A_KEY
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches, spec


def call(
    gateway: PortwayServer, method: str, path: str, key: str = TEAM_A_KEY, **kwargs: Any
) -> httpx.Response:
    return httpx.request(
        method,
        f"{gateway.base_url}{path}",
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
        **kwargs,
    )


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """Parse an SSE body; every event's ``event:`` line must equal its ``type``."""
    events: list[dict[str, Any]] = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = orjson.loads(lines["data"])
        assert lines.get("event") == data["type"], block
        events.append(data)
    return events


@functools.cache
def _event_schemas() -> dict[str, str]:
    """Event type → the name of its schema among ``ResponseStreamEvent``'s."""
    schemas = spec()["components"]["schemas"]
    names: dict[str, str] = {}
    for option in schemas["ResponseStreamEvent"]["anyOf"]:
        name = option["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name].get("properties", {}).get("type", {}).get("enum", ()):
            names[kind] = name
    return names


def check_stream(events: list[dict[str, Any]]) -> None:
    """Each event matches its schema in the spec (and ``ResponseStreamEvent``); sequence
    numbers strictly increase from 0."""
    numbers = [event["sequence_number"] for event in events]
    assert numbers == list(range(len(events))), numbers
    for event in events:
        assert_matches(_event_schemas()[event["type"]], event)
        assert_matches("ResponseStreamEvent", event)


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


async def stored_rows(database_url: str) -> list[dict[str, Any]]:
    """The ledger's rows, read from the database."""
    database = Database(database_url)
    await database.start()
    try:
        return list(await UsageRepository(database).rows(UsageFilter(), limit=100_000))
    finally:
        await database.close()
