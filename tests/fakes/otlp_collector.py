"""A fake OpenTelemetry collector: OTLP/HTTP (protobuf) on loopback, spans decoded."""

from __future__ import annotations

import threading

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.fakes.server import BackgroundServer


class FakeCollector(BackgroundServer):
    """Records every span posted to ``/v1/traces``; ``url`` is the exporter's endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Span] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._ignored)
        return app

    async def _traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        with self._lock:
            self.headers.append(dict(request.headers))
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def _ignored(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"", content_type="application/x-protobuf")
