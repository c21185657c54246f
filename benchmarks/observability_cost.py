"""What does observability cost per request, in CPU, with telemetry off and on?

In-process and single-threaded, so it holds on a busy machine where end-to-end latency
benchmarks do not: it replays the work the observability layer adds to one proxied
chat completion (a ``RequestTrace``, a call span, seven stage spans, one attempt, the
ledger record attached, the overhead header, the request log row built and queued) and,
with ``--telemetry``, the OpenTelemetry export of those spans and the GenAI metrics (to
an in-memory reader, no exporter). It also times the batched insert of request log rows
into SQLite (the background writer's share, off the request's path).

    python benchmarks/observability_cost.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from portway.accounting.ledger import UsageRecord
from portway.config import TelemetryConfig
from portway.observability.request_log import Bodies, RequestLog, build_row
from portway.observability.trace import RequestTrace
from portway.store import Database
from portway.store.request_log import RequestLogRepository

STAGES = ("ledger", "limits", "budget", "guardrail", "context", "cache", "router")


def one_request(log: RequestLog, telemetry: Any, state: dict[str, Any]) -> None:
    trace = RequestTrace(state, "POST", "/v1/chat/completions", None)
    token = trace.activate()
    call = trace.open(
        "chat bench",
        "call",
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "bench"},
    )
    stages = [trace.open(name, "stage") for name in STAGES]
    with trace.attempt("bench", "openai", "bench", 1):
        pass
    record = UsageRecord(
        created_at=time.time(),
        request_id="req_x",
        endpoint="chat.completions",
        model="bench",
        latency_ms=1.0,
        status=200,
        deployment="bench",
        prompt_tokens=12,
        completion_tokens=1,
        attempts=1,
    )
    for index in reversed(stages):
        if index == stages[0]:
            trace.record(call, record)
        trace.close(index)
    trace.close(call)
    now = time.perf_counter()
    trace.status = 200
    trace.headers_at = now
    f"{trace.overhead_ms(now):.2f}".encode("latin-1")
    trace.deactivate(token)
    trace.closed = True
    if telemetry is not None:
        telemetry.export(trace, now)
    log.submit(build_row(trace, Bodies(), 0.3, now))


async def insert_cost(rows: list[dict[str, Any]]) -> float:
    with tempfile.TemporaryDirectory() as directory:
        database = Database(f"sqlite:///{Path(directory)}/bench.db")
        await database.start()
        repository = RequestLogRepository(database)
        began = time.process_time()
        for start in range(0, len(rows), 500):
            await repository.append(rows[start : start + 500])
        spent = time.process_time() - began
        await database.close()
    return spent / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    from portway.observability.telemetry import Telemetry

    state = {"request_id": "req_bench"}
    for name, telemetry in (
        ("telemetry off", None),
        ("telemetry on", Telemetry.build(TelemetryConfig(enabled=True, exporter="none"))),
    ):
        log = RequestLog.__new__(RequestLog)
        queued: list[dict[str, Any]] = []
        log.submit = queued.append  # type: ignore[method-assign]
        for _ in range(1000):  # warm-up
            one_request(log, telemetry, state)
        queued.clear()
        began = time.process_time()
        for _ in range(args.requests):
            one_request(log, telemetry, state)
        per_request = (time.process_time() - began) / args.requests
        print(f"{name}: {per_request * 1e6:.1f} us CPU per request on the event loop")
        if telemetry is not None:
            telemetry.shutdown()
        else:
            insert = asyncio.run(insert_cost(queued[:10_000]))
            print(f"request log insert (batches of 500, SQLite): {insert * 1e6:.1f} us per row")


if __name__ == "__main__":
    main()
