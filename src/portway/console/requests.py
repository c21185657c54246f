"""The request log as the console reads it: the admin API's own routes, called in process.

The console asks ``GET /v1/admin/requests[/{id}]`` of the same FastAPI app with the page's
principal, so filters, cursors and tenant isolation (a virtual key sees only its own
requests) are the admin API's, never a copy of them. No HTTP hop: one ASGI call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.types import ASGIApp, Message

from portway.security.principal import Principal

FILTERS = ("since", "until", "key_id", "team", "user", "model", "status", "min_latency_ms")
RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "all": None}


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    status: int
    body: dict[str, Any]


class RequestLogReader:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def _get(self, principal: Principal, path: str, query: str) -> ApiAnswer:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(b"host", b"console.internal")],
            "client": None,
            "server": None,
            "state": {"principal": principal, "request_id": "console"},
        }
        status = 500
        chunks: list[bytes] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        raw = b"".join(chunks)
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = {"error": {"message": raw[:200].decode("utf-8", "replace")}}
        return ApiAnswer(status, body if isinstance(body, dict) else {})

    async def page(self, principal: Principal, params: Mapping[str, str]) -> ApiAnswer:
        """One page of entries, newest first, for the filters the page's form sent."""
        query = {name: params[name] for name in FILTERS if params.get(name)}
        if params.get("after"):
            query["after"] = params["after"]
        query["limit"] = "50"
        return await self._get(principal, "/v1/admin/requests", urlencode(query))

    async def entry(self, principal: Principal, request_id: str) -> ApiAnswer:
        return await self._get(principal, f"/v1/admin/requests/{quote(request_id, safe='')}", "")
