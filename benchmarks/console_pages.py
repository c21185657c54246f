"""How fast does each console page render with a million ledger rows in SQLite?

Migrates a fresh SQLite database, seeds ``--rows`` usage rows (default 1,000,000) spread
over the last ``--days`` days across 200 keys, 10 teams and 5 models, plus request-log
entries when that table exists, starts Portway (its own process) with a master key,
signs in to the console and times every page: the first (cold) render and the median of
``--repeat`` more. Each page is one request: its data is rendered into the HTML.

    python benchmarks/console_pages.py [--rows 1000000] [--days 30] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MASTER = "sk-bench-master"
PAGES = (
    "/ui",
    "/ui?window=1h",
    "/ui?window=7d",
    "/ui?window=30d",
    "/ui/deployments",
    "/ui/keys",
    "/ui/usage?group_by=key",
    "/ui/usage?group_by=model&range=30d",
    "/ui/usage?group_by=day&range=all",
    "/ui/usage.csv?group_by=team&range=all",
    "/ui/requests",
    "/ui/requests?model=m-2&min_latency_ms=500",
    "/ui/playground",
)
MODELS = [f"m-{n}" for n in range(5)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(database: Path, rows: int, days: float) -> None:
    """Migrate, then write the ledger through the ledger writer's own repository call
    (rows plus their rollups, in batches), and create the keys the rows belong to."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from portway.store import Database
    from portway.store.usage import UsageRepository

    now = time.time()
    keys = [f"key_bench{n:04d}" for n in range(200)]
    rng = random.Random(7)

    def row(n: int) -> dict[str, object]:
        key = rng.randrange(200)
        model = MODELS[rng.randrange(5)]
        return {
            "record_id": f"rec{n:012d}",
            "created_at": now - rng.random() * days * 86400,
            "request_id": f"req_bench{n:012d}",
            "endpoint": "/v1/chat/completions",
            "key_id": keys[key],
            "user_id": None,
            "team_id": f"team-{key % 10}",
            "model": model,
            "deployment": model,
            "prompt_tokens": rng.randrange(20, 2000),
            "completion_tokens": rng.randrange(1, 500),
            "cached_tokens": 0,
            "usage_estimated": False,
            "cost_nanos": rng.randrange(1000, 5_000_000),
            "cost_saved_nanos": 0,
            "latency_ms": rng.lognormvariate(5.5, 0.8),
            "ttft_ms": None,
            "status": 200 if rng.random() > 0.02 else rng.choice((429, 500, 502)),
            "error_code": None,
            "cache_status": "hit" if rng.random() < 0.1 else "miss",
            "context_strategy": None,
            "attempts": 1,
            "stream": False,
        }

    async def run() -> None:
        db = Database(f"sqlite:///{database}")
        await db.start()
        usage = UsageRepository(db)
        for start in range(0, rows, 20_000):
            await usage.append([row(n) for n in range(start, min(rows, start + 20_000))])
        await db.close()

    asyncio.run(run())
    connection = sqlite3.connect(database)
    connection.executemany(
        "INSERT INTO virtual_keys (id, secret_hash, prefix, name, team_id, priority, no_store,"
        " metadata, created_at) VALUES (?, ?, ?, ?, ?, 0, 0, '{}', ?)",
        [
            (k, f"hash{n:060d}", "pw-bench", f"key {n}", f"team-{n % 10}", now)
            for n, k in enumerate(keys)
        ],
    )
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()


def serve(database: Path, port: int) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
        "PORTWAY_MASTER_KEY": MASTER,
        "PORTWAY_DATABASE_URL": f"sqlite:///{database}",
    }
    config = database.parent / "portway.yaml"
    models = "\n".join(
        f"  - {{name: {m}, provider: openai, base_url: 'http://127.0.0.1:9/v1', api_key: x}}"
        for m in MODELS
    )
    config.write_text(f"models:\n{models}\n")
    return subprocess.Popen(
        [sys.executable, "-m", "portway", "serve", "--port", str(port), "--config", str(config)],
        env=environment,
        cwd=database.parent,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "portway.db"
        started = time.perf_counter()
        seed(database, args.rows, args.days)
        took = time.perf_counter() - started
        print(f"seeded {args.rows:,} ledger rows over {args.days:g} days in {took:.0f} s")
        port = free_port()
        server = serve(database, port)
        try:
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
            deadline = time.monotonic() + 120
            while True:
                try:
                    if http.get("/health/live").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("Portway did not start")
                time.sleep(0.2)
            assert http.post("/ui/login", data={"key": MASTER}).status_code == 303
            print(f"{'page':44} {'first ms':>9} {'median ms':>10}  status")
            for path in PAGES:
                timings = []
                status = 0
                for _ in range(args.repeat + 1):
                    begin = time.perf_counter()
                    response = http.get(path)
                    timings.append((time.perf_counter() - begin) * 1000)
                    status = response.status_code
                median = statistics.median(timings[1:]) if len(timings) > 1 else timings[0]
                print(f"{path:44} {timings[0]:9.1f} {median:10.1f}  {status}")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
