"""``Observability``: what happens to a finished request (request log, OpenTelemetry)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from portway.config import Settings
from portway.observability.request_log import Bodies, RequestLog, build_row
from portway.observability.trace import RequestTrace
from portway.store import Database
from portway.store.request_log import RequestLogRepository

if TYPE_CHECKING:
    from portway.observability.telemetry import Telemetry


class Observability:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.request_log = RequestLog(RequestLogRepository(database), settings.request_log)
        self.body_policy = self.request_log.bodies
        self.telemetry: Telemetry | None = None
        if settings.telemetry.enabled:
            # Imported only when on: with telemetry off, OpenTelemetry is never loaded.
            from portway.observability.telemetry import Telemetry

            self.telemetry = Telemetry.build(settings.telemetry)

    def finish(self, trace: RequestTrace, bodies: Bodies, overhead_ms: float | None) -> None:
        """Called by the middleware after a request's last byte (off the client's path)."""
        now = time.perf_counter()
        if self.telemetry is not None:
            self.telemetry.export(trace, now)
        if self.request_log.wants(trace):
            self.request_log.submit(build_row(trace, bodies, overhead_ms, now))

    async def start(self) -> None:
        await self.request_log.start()

    async def close(self) -> None:
        await self.request_log.close()
        if self.telemetry is not None:
            self.telemetry.shutdown()
