"""How long does one request log page take with a million entries in SQLite?

Fills a fresh SQLite database (migrated by Portway) with ``--rows`` entries spread over
30 days, 200 keys, 20 teams, 8 models and ~3% errors, then times a page of 50 through
``RequestLogRepository.page`` (what ``GET /v1/admin/requests`` runs) for each filter,
first pages and a cursor deep in the list.

    python benchmarks/request_log_page.py [--rows 1000000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from portway.store import Database
from portway.store.request_log import RequestLogFilter, RequestLogRepository

COLUMNS = (
    "request_id, created_at, endpoint, key_id, key_name, user_id, team_id, model, deployment, "
    "provider, status_code, latency_ms, ttft_ms, overhead_ms, stream, prompt_tokens, "
    "completion_tokens, cost_nanos, cache, attempts, guardrails, error_type, error_code, "
    "error_message, trace_id, spans, request_body, response_body"
)
SPANS = '[{"name":"chat m","kind":"call","parent":null,"start_ms":0.1,"duration_ms":20.0}]'


def fill(path: Path, rows: int) -> None:
    rng = random.Random(7)
    now = time.time()
    start = now - 30 * 86400
    step = (now - start) / rows
    connection = sqlite3.connect(path)
    marks = ",".join("?" * 28)
    batch = []
    for i in range(rows):
        error = rng.random() < 0.03
        key = rng.randrange(200)
        batch.append(
            (
                f"req_{i:012x}",
                start + i * step,
                "/v1/chat/completions",
                f"key-{key}",
                f"app-{key}",
                f"user-{rng.randrange(1000)}",
                f"team-{key % 20}",
                f"model-{rng.randrange(8)}",
                "dep",
                "openai",
                rng.choice((429, 500, 502)) if error else 200,
                rng.lognormvariate(5, 1),
                None,
                0.4,
                0,
                rng.randrange(2000),
                rng.randrange(500),
                rng.randrange(10**6),
                "miss",
                1,
                None,
                "server_error" if error else None,
                None,
                None,
                None,
                SPANS,
                None,
                None,
            )
        )
        if len(batch) == 50_000:
            connection.executemany(f"INSERT INTO request_log ({COLUMNS}) VALUES ({marks})", batch)
            connection.commit()
            batch.clear()
    if batch:
        connection.executemany(f"INSERT INTO request_log ({COLUMNS}) VALUES ({marks})", batch)
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()


async def measure(url: str, repeat: int, rows: int) -> None:
    database = Database(url)
    await database.start()
    repository = RequestLogRepository(database)
    now = time.time()
    deep_cursor = f"req_{rows // 2:012x}"
    cases: dict[str, tuple[RequestLogFilter, str | None]] = {
        "newest, no filter": (RequestLogFilter(), None),
        "key": (RequestLogFilter(key_id="key-17"), None),
        "team": (RequestLogFilter(team_id="team-3"), None),
        "model": (RequestLogFilter(model="model-5"), None),
        "status=error": (RequestLogFilter(status="error"), None),
        "status=429": (RequestLogFilter(status=429), None),
        "min_latency_ms=2000": (RequestLogFilter(min_latency_ms=2000), None),
        "last 24 h": (RequestLogFilter(since=now - 86400), None),
        "a day 20 days ago": (
            RequestLogFilter(since=now - 20 * 86400, until=now - 19 * 86400),
            None,
        ),
        "cursor at 500k, no filter": (RequestLogFilter(), deep_cursor),
        "key + status=error": (RequestLogFilter(key_id="key-17", status="error"), None),
    }
    print(f"{'query (limit 50)':32} {'p50 ms':>8} {'max ms':>8} rows")
    try:
        for name, (where, after) in cases.items():
            times = []
            found = 0
            for _ in range(repeat):
                began = time.perf_counter()
                page, _more = await repository.page(where, 50, after)
                times.append((time.perf_counter() - began) * 1000)
                found = len(page)
            print(f"{name:32} {statistics.median(times):8.2f} {max(times):8.2f} {found}")
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--db", type=Path, help="keep the filled database here (reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = args.db or Path(directory) / "portway.db"
        url = f"sqlite:///{path}"
        if path.exists():
            asyncio.run(measure(url, args.repeat, args.rows))
            return

        async def migrate() -> None:
            database = Database(url)
            await database.start()
            await database.close()

        asyncio.run(migrate())
        began = time.perf_counter()
        fill(path, args.rows)
        print(f"filled {args.rows} rows in {time.perf_counter() - began:.1f} s")
        asyncio.run(measure(url, args.repeat, args.rows))


if __name__ == "__main__":
    main()
