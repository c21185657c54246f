"""What every fake upstream shares: recorded requests, scripted answers, SSE, text pieces.

A ``ScriptedUpstream`` answers each call with the next scripted ``Action``, else its
``default``, and records what arrived in ``requests``; ``reset()`` forgets both.
Subclasses build the routes and say what the default answer is.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.server import BackgroundServer

MAX_BODY = 64 * 1024 * 1024


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class Action:
    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        raise NotImplementedError


async def start_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    return response


def split_text(text: str, pieces: int = 3) -> list[str]:
    """``text`` in about ``pieces`` consecutive parts (none for empty text)."""
    size = max(1, len(text) // pieces)
    return [text[i : i + size] for i in range(0, len(text), size)]


class ScriptedUpstream(BackgroundServer):
    """A fake upstream: ``script(...)`` queues answers, ``requests`` records arrivals."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []
        self._script: deque[Action] = deque()
        self.default: Action = self.default_action()

    def default_action(self) -> Action:
        raise NotImplementedError

    @property
    def last_body(self) -> dict[str, Any]:
        return self.requests[-1].body

    def script(self, *actions: Action) -> None:
        self._script.extend(actions)

    def reset(self) -> None:
        self._script.clear()
        self.requests.clear()
        self.default = self.default_action()

    def new_app(self) -> web.Application:
        return web.Application(client_max_size=MAX_BODY)

    async def record(self, request: web.Request) -> dict[str, Any]:
        body = orjson.loads(await request.read())
        self.requests.append(Recorded(request.path, dict(request.headers), body, time.monotonic()))
        return body

    def next_action(self) -> Action:
        return self._script.popleft() if self._script else self.default
